"""The Discord HTTP API and gateway stand-in."""

from __future__ import annotations

import itertools
import json
import re
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from typing import ClassVar
from urllib.parse import parse_qs, urlparse

from .discord_users import DiscordUsers
from .servers import DROP, LocalServer, drop_connection, first_call


def _now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000000+00:00", time.gmtime())


class DiscordApiStandIn(DiscordUsers, LocalServer):
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
        # how long Discord takes to answer a call (method, path below /api/v10, body) -> seconds; the
        # calls it holds are counted while they are answered (`in_flight`, and the most at once)
        self.latency: Callable[[str, str, dict], float] = lambda method, path, body: 0.0
        self.in_flight = self.most_in_flight = 0
        self.being_answered = 0  # calls read and not yet answered to the end (any latency)
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
                with standin.cond:
                    standin.being_answered += 1
                try:
                    self._answer(method)
                finally:
                    with standin.cond:
                        standin.being_answered -= 1
                        standin.cond.notify_all()

            def _answer(self, method: str) -> None:
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
                status, answer = standin.answer_in_time(method, url.path, parse_qs(url.query), body, self.headers)
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
    def answer_in_time(
        self, method: str, path: str, query: dict, body: dict, headers
    ) -> tuple[int, dict | list | None]:
        """`answer`, after the call's latency (other calls are answered meanwhile)."""
        delay = self.latency(method, path.removeprefix("/api/v10"), body)
        if not delay:
            return self.answer(method, path, query, body, headers)
        with self.cond:
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            time.sleep(delay)
            return self.answer(method, path, query, body, headers)
        finally:
            with self.cond:
                self.in_flight -= 1

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

    # -- what the bot did ---------------------------------------------------------------------
    def wait_for(self, predicate: Callable[[str, str, dict], bool], timeout: float = 60.0) -> tuple[str, str, dict]:
        return first_call(self.cond, self.calls, predicate, timeout, "Discord API")

    def wait_answered(self, timeout: float = 10.0) -> None:
        """Until every call made so far has had its answer written: a call is recorded (and `wait_for`
        returns) before it is answered, and a bot stopped in between fails the call it is still making."""
        with self.cond:
            self.cond.wait_for(lambda: self.being_answered == 0, timeout)

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
