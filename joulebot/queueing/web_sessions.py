"""Where the web chat's sessions live in Redis: one expiring key each, by the SHA-256 of the cookie's
value (`keys.web_session_key`). The web front end owns what a session means (`web.chat_sessions`);
this is only its storage, kept with the rest of what front ends write to Redis. Each call raises
QueueUnavailable (one line) when Redis does not answer."""

from __future__ import annotations

import redis

from joulebot.keys import web_session_key
from joulebot.queueing.client import queue_errors


class SessionStore:
    def __init__(self, connection: redis.Redis) -> None:
        self.connection = connection

    def get(self, session_hash: str) -> bytes | str | None:
        with queue_errors():
            raw = self.connection.get(web_session_key(session_hash))
        return raw if isinstance(raw, bytes | str) else None

    def put(self, session_hash: str, data: str, ttl_s: int) -> None:
        with queue_errors():
            self.connection.set(web_session_key(session_hash), data, ex=ttl_s)

    def keep(self, session_hash: str, ttl_s: int) -> None:
        """The session lives `ttl_s` from now."""
        with queue_errors():
            self.connection.expire(web_session_key(session_hash), ttl_s)

    def drop(self, session_hash: str) -> None:
        with queue_errors():
            self.connection.delete(web_session_key(session_hash))
