"""A front end's copy of its users' choices (default model, units, pinned box, system prompt).

Every chat message needs them, and reading them is a query of the history database on the enqueue
path (about a third of raw RQ's whole enqueue). A front end keeps what it read, with the versions it
read it at: every change of a user's choices, of a group chat's system prompt, and every forget —
from any process, the terminal's `joulebot history --forget` too — writes a new version to Redis
(`changed`), and each message reads the versions in the same round trip as its limits (`read`),
so a copy is used only while nothing changed since it was read.

A version that could not be written (Redis went away between the database and it) or was lost (a
Redis that restarted empty) cannot hide a change for long: a copy older than `MAX_AGE_S` is read again.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import OrderedDict
from typing import Generic, TypeVar

import redis
from redis.client import Pipeline

from joulebot.config import Settings
from joulebot.keys import preferences_version_key
from joulebot.queueing.client import QueueUnavailable, queue_errors

log = logging.getLogger(__name__)

MAX_AGE_S = 60.0
MAX_ENTRIES = 10_000  # the users who asked most lately; the others are read again
VERSION_TTL_S = 7 * 86400  # far longer than MAX_AGE_S: a version that expired finds no copy it could vouch for

T = TypeVar("T")
Versions = tuple[object, ...]  # Redis' replies: the user's version, then the chat's (None: never changed)


def _keys(platform: str, user_id: str, chat_id: str | None) -> list[str]:
    owners = [user_id] if chat_id is None else [user_id, f"chat:{chat_id}"]
    return [preferences_version_key(platform, owner) for owner in owners]


def read(pipe: Pipeline, platform: str, user_id: str, chat_id: str | None) -> int:
    """Read the versions of the user's choices (and `chat_id`'s system prompt) in the caller's pipeline;
    returns how many replies they take, in order."""
    keys = _keys(platform, user_id, chat_id)
    for key in keys:
        pipe.get(key)
    return len(keys)


def changed(
    settings: Settings, connection: redis.Redis, platform: str, user_id: str, chat_id: str | None = None
) -> None:
    """Say that the user's choices (or, with `chat_id`, that chat's system prompt) changed; call it after
    the change is in the database. When Redis does not answer, copies catch up within `MAX_AGE_S`."""
    key = _keys(platform, user_id, chat_id)[-1]
    try:
        with queue_errors(settings):
            connection.set(key, uuid.uuid4().hex, ex=VERSION_TTL_S)
    except QueueUnavailable as exc:
        log.warning("preferences saved; front ends see them within %.0f s (%s)", MAX_AGE_S, exc)


class PreferenceCache(Generic[T]):
    """Choices per (user, chat whose system prompt applies), with the versions they were read at."""

    def __init__(self) -> None:
        self._entries: OrderedDict[tuple[str, str | None], tuple[Versions, float, T]] = OrderedDict()
        self._lock = threading.Lock()  # the bots ask from several threads

    def get(self, user_id: str, chat_id: str | None, versions: Versions) -> T | None:
        with self._lock:
            found = self._entries.get((user_id, chat_id))
            if found is None:
                return None
            seen, read_at, value = found
            if seen != versions or time.monotonic() - read_at > MAX_AGE_S:
                del self._entries[(user_id, chat_id)]
                return None
            self._entries.move_to_end((user_id, chat_id))
            return value

    def put(self, user_id: str, chat_id: str | None, versions: Versions, value: T) -> None:
        with self._lock:
            self._entries[(user_id, chat_id)] = (versions, time.monotonic(), value)
            self._entries.move_to_end((user_id, chat_id))
            while len(self._entries) > MAX_ENTRIES:
                self._entries.popitem(last=False)

    def drop(self, user_id: str) -> None:
        """Forget every copy of the user's choices here (their system prompt among them)."""
        with self._lock:
            for key in [k for k in self._entries if k[0] == user_id]:
                del self._entries[key]
