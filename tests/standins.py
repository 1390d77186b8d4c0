"""Local stand-ins that speak the documented wire protocols of services we cannot reach."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse


@dataclass
class Reply:
    status: int = 200
    body: bytes | dict = b""
    delay_s: float = 0.0


@dataclass
class HttpStandIn:
    """An HTTP server on 127.0.0.1 answering from a queue of Replies, recording every request."""

    replies: list[Reply] = field(default_factory=list)
    requests: list[dict] = field(default_factory=list)

    def __post_init__(self) -> None:
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                url = urlparse(self.path)
                standin.requests.append(
                    {"path": url.path, "query": parse_qs(url.query), "headers": dict(self.headers.items())}
                )
                reply = standin.replies.pop(0) if standin.replies else Reply(500, {"error": "no reply queued"})
                time.sleep(reply.delay_s)
                body = json.dumps(reply.body).encode() if isinstance(reply.body, dict) else reply.body
                try:
                    self.send_response(reply.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout tests)

            def log_message(self, *args) -> None:  # keep test output clean
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class OllamaStandIn:
    """Speaks Ollama's HTTP API on 127.0.0.1: /api/tags, /api/show, /api/generate (load),
    /api/chat (streamed NDJSON with final statistics), /api/pull (streamed progress), error bodies."""

    def __init__(self, models: dict[str, str] | None = None) -> None:
        self.models = dict(models or {"llama3:8b": "8.0B", "tinyllama:1.1b": "1.1B"})  # tag -> parameter_size
        self.pullable = {"mistral:7b": "7.2B"}
        self.answer = ["<think>The user wants a capital.</think>", "Paris", " is the capital", " of France."]
        self.break_after: int | None = None  # chat: close the connection after this many chunks
        self.out_of_memory: set[str] = set()
        self.loaded: set[str] = set()
        self.requests: list[tuple[str, str, dict]] = []
        standin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

            def _body(self) -> dict:
                length = int(self.headers.get("Content-Length") or 0)
                return json.loads(self.rfile.read(length) or b"{}")

            def _json(self, status: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _stream(self, lines: list[dict], break_after: int | None = None) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "application/x-ndjson")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                for i, line in enumerate(lines):
                    if break_after is not None and i >= break_after:
                        self.close_connection = True
                        self.wfile.flush()
                        self.connection.shutdown(2)  # mid-answer: no final chunk, no terminator
                        return
                    data = json.dumps(line).encode() + b"\n"
                    self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
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
                    steps += [{"status": "pulling 6a0746a1ec1a", "digest": "sha256:6a0746a1ec1a", "total": total,
                               "completed": total * k // 4} for k in range(5)]  # fmt: skip
                    steps += [{"status": "verifying sha256 digest"}, {"status": "success"}]
                    standin.models[tag] = standin.pullable.pop(tag)
                    self._stream(steps)
                    return
                if tag not in standin.models:
                    self._missing(tag)
                    return
                if self.path == "/api/show":
                    self._json(200, {"details": standin.listing(tag)["details"], "model_info": {}})
                elif self.path == "/api/generate":
                    if tag in standin.out_of_memory:
                        self._json(500, {"error": "model requires more system memory (12.3 GiB) than is available"})
                        return
                    first = tag not in standin.loaded
                    standin.loaded.add(tag)
                    load_ns = 1_500_000_000 if first else 900_000
                    self._json(200, {"model": tag, "created_at": "2026-11-26T12:00:00Z", "response": "",
                                     "done": True, "done_reason": "load", "load_duration": load_ns})  # fmt: skip
                elif self.path == "/api/chat":
                    lines = [{"model": tag, "created_at": "2026-11-26T12:00:00Z",
                              "message": {"role": "assistant", "content": piece}, "done": False}
                             for piece in standin.answer]  # fmt: skip
                    lines.append({
                        "model": tag, "created_at": "2026-11-26T12:00:01Z",
                        "message": {"role": "assistant", "content": ""}, "done": True, "done_reason": "stop",
                        "total_duration": 812_000_000, "load_duration": 900_000, "prompt_eval_count": 14,
                        "prompt_eval_duration": 61_000_000, "eval_count": len(standin.answer) + 6,
                        "eval_duration": 700_000_000,
                    })  # fmt: skip
                    self._stream(lines, standin.break_after)
                else:
                    self._json(404, {"error": "not found"})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def listing(self, tag: str) -> dict:
        return {
            "name": tag, "model": tag, "modified_at": "2026-11-01T10:00:00Z", "size": 4_661_224_676,
            "digest": "365c0bd3c000", "details": {"parent_model": "", "format": "gguf", "family": tag.split(":")[0],
            "families": [tag.split(":")[0]], "parameter_size": self.models[tag], "quantization_level": "Q4_0"},
        }  # fmt: skip

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
