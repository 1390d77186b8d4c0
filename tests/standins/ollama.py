"""The Ollama API stand-in: models, chat and generate, streamed as Ollama streams them."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler

from .servers import LocalServer, send_json


class OllamaStandIn(LocalServer):
    """Speaks Ollama's HTTP API on 127.0.0.1: /api/tags, /api/show, /api/generate (load),
    /api/chat (streamed NDJSON with final statistics), /api/pull (streamed progress), error bodies.

    A model runs with the `options.num_ctx` of the request that loaded it (the server's own default
    when a request omits it); a request with another `num_ctx` loads the model again, as Ollama does,
    and its `load_duration` says so."""

    def __init__(self, models: dict[str, str] | None = None) -> None:
        self.models = dict(models or {"llama3:8b": "8.0B", "tinyllama:1.1b": "1.1B"})  # tag -> parameter_size
        self.pullable = {"mistral:7b": "7.2B"}
        self.vision: set[str] = set()  # tags whose /api/show capabilities include "vision"
        self.answer = ["<think>The user wants a capital.</think>", "Paris", " is the capital", " of France."]
        self.answer_for: Callable[[dict], list[str]] | None = None  # chat: the chunks for a request body instead
        self.break_after: int | None = None  # chat: close the connection after this many chunks
        self.hung_up = threading.Event()  # chat: the client closed the connection before the answer's end
        self.chunk_delay_s = 0.0  # chat: pause before each streamed chunk (a model that takes its time)
        self.prompt_eval_ns, self.eval_ns = 61_000_000, 700_000_000  # chat: the durations it reports
        self.timed = False  # chat: take the reported durations for real (reading the prompt, then each piece)
        self.out_of_memory: set[str] = set()
        self.loaded: set[str] = set()
        self.evicted: set[str] = set()  # chat: the model was unloaded since; this answer loads it again
        self.default_num_ctx = 4096  # what the server uses when a request sends no options.num_ctx
        self.num_ctx: dict[str, int] = {}  # tag -> the context window it is loaded with
        self.requests: list[tuple[str, str, dict]] = []
        standin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                # small streamed chunks + Nagle + delayed ACKs would add ~40 ms per answer
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def log_message(self, *args) -> None:
                pass

            def _body(self) -> dict:
                length = int(self.headers.get("Content-Length") or 0)
                return json.loads(self.rfile.read(length) or b"{}")

            def _json(self, status: int, body: dict) -> None:
                send_json(self, status, body)

            def _stream(self, lines: list[dict], break_after: int | None = None, delays: list[float] = ()) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "application/x-ndjson")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                for i, line in enumerate(lines):
                    time.sleep(standin.chunk_delay_s + (delays[i] if i < len(delays) else 0.0))
                    if break_after is not None and i >= break_after:
                        self.close_connection = True
                        self.wfile.flush()
                        self.connection.shutdown(2)  # mid-answer: no final chunk, no terminator
                        return
                    data = json.dumps(line).encode() + b"\n"
                    try:
                        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                        self.wfile.flush()
                    except (BrokenPipeError, ConnectionResetError):  # as Ollama, stop generating
                        self.close_connection = True
                        standin.hung_up.set()
                        return
                self.wfile.write(b"0\r\n\r\n")

            def _missing(self, tag: str) -> None:
                self._json(404, {"error": f'model "{tag}" not found, try pulling it first'})

            def do_GET(self) -> None:
                standin.requests.append(("GET", self.path, {}))
                if self.path == "/api/tags":
                    self._json(200, {"models": [standin.listing(tag) for tag in standin.models]})
                else:
                    self._json(404, {"error": "not found"})

            def do_POST(self) -> None:
                body = self._body()
                standin.requests.append(("POST", self.path, body))
                tag = body.get("model", "")
                if self.path == "/api/pull":
                    if tag not in standin.pullable:
                        self._json(500, {"error": "pull model manifest: file does not exist"})
                        return
                    total = 4_109_865_159
                    steps = [{"status": "pulling manifest"}]
                    steps += [
                        {
                            "status": "pulling 6a0746a1ec1a",
                            "digest": "sha256:6a0746a1ec1a",
                            "total": total,
                            "completed": total * k // 4,
                        }
                        for k in range(5)
                    ]
                    steps += [{"status": "verifying sha256 digest"}, {"status": "success"}]
                    standin.models[tag] = standin.pullable.pop(tag)
                    self._stream(steps)
                    return
                if tag not in standin.models:
                    self._missing(tag)
                    return
                if self.path == "/api/show":
                    capabilities = ["completion", *(["vision"] if tag in standin.vision else [])]
                    self._json(
                        200,
                        {"details": standin.listing(tag)["details"], "model_info": {}, "capabilities": capabilities},
                    )
                elif self.path == "/api/generate":
                    if tag in standin.out_of_memory:
                        self._json(500, {"error": "model requires more system memory (12.3 GiB) than is available"})
                        return
                    resized = standin.resized(tag, body)
                    first = tag not in standin.loaded or resized
                    standin.loaded.add(tag)
                    load_ns = 1_500_000_000 if first else 900_000
                    self._json(
                        200,
                        {
                            "model": tag,
                            "created_at": "2026-11-26T12:00:00Z",
                            "response": "",
                            "done": True,
                            "done_reason": "load",
                            "load_duration": load_ns,
                        },
                    )
                elif self.path == "/api/chat":
                    resized = standin.resized(tag, body)
                    reload_ns = 1_200_000_000 if tag in standin.evicted or resized else 900_000
                    standin.evicted.discard(tag)
                    lines = [
                        {
                            "model": tag,
                            "created_at": "2026-11-26T12:00:00Z",
                            "message": {"role": "assistant", "content": piece},
                            "done": False,
                        }
                        for piece in (standin.answer_for(body) if standin.answer_for else standin.answer)
                    ]
                    lines.append(
                        {
                            "model": tag,
                            "created_at": "2026-11-26T12:00:01Z",
                            "message": {"role": "assistant", "content": ""},
                            "done": True,
                            "done_reason": "stop",
                            "total_duration": standin.prompt_eval_ns + standin.eval_ns + 50_100_000 + reload_ns,
                            "load_duration": reload_ns,
                            "prompt_eval_count": 14,
                            "prompt_eval_duration": standin.prompt_eval_ns,
                            "eval_count": len(lines) + 6,
                            "eval_duration": standin.eval_ns,
                        }
                    )
                    pieces = len(lines) - 1  # each piece one step of generating
                    step = standin.eval_ns / 1e9 / pieces
                    delays = [standin.prompt_eval_ns / 1e9 + step, *[step] * (pieces - 1)]
                    self._stream(lines, standin.break_after, delays if standin.timed else [])
                else:
                    self._json(404, {"error": "not found"})

        self._serve(Handler)

    def resized(self, tag: str, body: dict) -> bool:
        """Whether this request's context window differs from the one `tag` is loaded with (a reload)."""
        wanted = int((body.get("options") or {}).get("num_ctx") or self.default_num_ctx)
        before = self.num_ctx.get(tag)
        self.num_ctx[tag] = wanted
        return before is not None and before != wanted

    def images_received(self) -> list[list[str]]:
        """The base64 `images` of the last message of every chat request, in order ([] when none)."""
        return [
            (body.get("messages") or [{}])[-1].get("images") or []
            for _, path, body in self.requests
            if path == "/api/chat"
        ]

    def contexts(self) -> list[tuple[str, str, int | None]]:
        """(path, model, options.num_ctx as sent, None if absent) of every load and chat, in order."""
        return [
            (path, body.get("model", ""), (body.get("options") or {}).get("num_ctx"))
            for _, path, body in self.requests
            if path in ("/api/generate", "/api/chat")
        ]

    def listing(self, tag: str) -> dict:
        return {
            "name": tag,
            "model": tag,
            "modified_at": "2026-11-01T10:00:00Z",
            "size": 4_661_224_676,
            "digest": "365c0bd3c000",
            "details": {
                "parent_model": "",
                "format": "gguf",
                "family": tag.split(":")[0],
                "families": [tag.split(":")[0]],
                "parameter_size": self.models[tag],
                "quantization_level": "Q4_0",
            },
        }


# Telegram's HTML parse mode (Bot API, "Formatting options"): these tags, the named entities &lt; &gt;
# &amp; &quot; and numeric ones; every other <, > and & must be escaped.
