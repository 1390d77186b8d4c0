"""Following one API answer to its end, whoever still listens.

Each queued answer gets a task of its own (`settle`) that follows it until the worker is done with it
and then clears its delivery, whether the client is still there or not: a client that hangs up
mid-stream leaves the answer to finish, be measured and stored, and nothing of it running here. The
task follows through the web process's one `Follower` (queueing): one thread and one Redis
connection wait on every answer the process owes, pushed as the worker writes it, however many
streams are open. The response reads what the task saw (`Followed`): the text so far, then the
Result or the error.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from joulebot.chat.status import status_text
from joulebot.exchange import Result
from joulebot.queueing.client import JobCancelled, JobError, JobTimedOut, QueueUnavailable
from joulebot.queueing.connection import is_up
from joulebot.queueing.deliveries import Delivery
from joulebot.queueing.follower import Delta, Finished, QueueAway, Status
from joulebot.web.openai_asking import QUEUE_AWAY, ApiQueue
from joulebot.web.openai_errors import ApiError

log = logging.getLogger(__name__)

AWAY = QUEUE_AWAY + "; the answer will still be stored in history if it is made"


@dataclass
class Followed:
    """What the task following an answer saw, for the response that shows it."""

    text: str = ""
    status: str = ""  # where the job stands while it waits or runs (`chat.status`), as every chat shows it
    result: Result | None = None
    error: ApiError | None = None
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    finished: asyncio.Event = field(default_factory=asyncio.Event)

    def grew(self, text: str) -> None:
        self.text = text
        self.changed.set()

    def moved(self, status: str) -> None:
        if status != self.status:
            self.status = status
            self.changed.set()

    def end(self, result: Result | None = None, error: ApiError | None = None) -> None:
        if not self.finished.is_set():
            self.result, self.error = result, error
            self.finished.set()
            self.changed.set()


def _error(exc: JobError) -> ApiError:
    if isinstance(exc, JobTimedOut):
        return ApiError(504, str(exc), code="timeout")
    if isinstance(exc, JobCancelled):
        return ApiError(409, str(exc), code="cancelled")
    return ApiError(503, str(exc), code="no_answer")


async def settle(api: ApiQueue, delivery: Delivery, followed: Followed) -> None:
    """Follow the delivery's answer to its end, tell `followed`, then clear the delivery: the key's
    pending answers count it no more. While Redis is away the response ends with a 503 at once; the
    following goes on (the follower says the answer lost once a Result would have expired)."""
    try:
        async with api.follower.watch(delivery.key) as watch:
            async for event in watch:
                if isinstance(event, Delta):
                    followed.grew(event.answer)
                elif isinstance(event, Status):
                    followed.moved(status_text(event.progress))
                elif isinstance(event, QueueAway):
                    followed.end(error=ApiError(503, AWAY, code="queue_unavailable"))
                elif isinstance(event, Finished):
                    followed.end(event.result)
    except JobError as exc:
        followed.end(error=_error(exc))
    try:
        await asyncio.to_thread(api.books[delivery.platform].done, delivery)
    except QueueUnavailable as exc:  # cleared at the next start of the app
        log.warning("could not clear the delivery of %s: %s", delivery.key, exc)


async def resume(api: ApiQueue, spawn: Callable[[Delivery], None]) -> int:
    """At start: follow again every API answer still owed (their clients are gone: only to settle
    them). Redis not answering: nothing (the next start resumes them)."""
    if not await asyncio.to_thread(is_up, api.client.connection):  # an embedded Redis is not started for this
        return 0
    try:
        owed = [d for book in api.books.values() for d in await asyncio.to_thread(book.pending)]
    except QueueUnavailable:
        return 0
    for delivery in owed:
        spawn(delivery)
    return len(owed)
