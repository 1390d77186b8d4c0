"""The Telegram Bot API stand-in: updates, sends and edits checked as Telegram checks them."""

from __future__ import annotations

import html
import itertools
import json
import re
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from typing import ClassVar
from urllib.parse import parse_qs, unquote

from .servers import DROP, LocalServer, drop_connection, first_call

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
        self._file_numbers = itertools.count()
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
        photo = [  # each size a file of its own, numbered as Telegram numbers a bot's files
            {**self.upload(data, f"photos/file_{next(self._file_numbers)}.jpg"), "width": w, "height": h}
            for w, h, data in sizes
        ]
        self._attachment(user_id, caption, photo=photo, **extra)

    def album(
        self, user_id: int, photos: list[list[tuple[int, int, bytes]]], caption: str | None = None, **extra
    ) -> None:
        """An album (a media group): one message per photo, each with the album's `media_group_id`, the
        caption on the first only (as Telegram's apps send it), pushed together as Telegram delivers them."""
        group = f"album-{next(self._ids)}"
        for number, sizes in enumerate(photos):
            self.photo(user_id, sizes, caption if number == 0 else None, media_group_id=group, **extra)

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
