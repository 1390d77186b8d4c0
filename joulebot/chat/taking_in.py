"""One question of a user taken in at a time by a bot process.

A bot takes updates concurrently, and between checking a user's pending answers (`Asking.prepare`)
and recording the new one (`Asking.submit`) it sends the "queued" status — a round trip to the chat
platform. Two messages of one user inside that window would both pass MAX_PENDING_PER_USER. Holding
a per-user lock across the two closes it without another Redis round trip on the enqueue path;
other users are never held up.
"""

from __future__ import annotations

import asyncio
from weakref import WeakValueDictionary


class TakingIn:
    """Per-user locks, each gone once no question of that user is being taken in."""

    def __init__(self) -> None:
        self._locks: WeakValueDictionary[str, asyncio.Lock] = WeakValueDictionary()

    def __call__(self, user_id: str) -> asyncio.Lock:
        lock = self._locks.get(user_id)
        if lock is None:
            lock = asyncio.Lock()
            self._locks[user_id] = lock
        return lock
