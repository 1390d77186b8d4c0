"""Following one API answer to its end, whoever still listens.

Each queued answer gets a task of its own (`settle`) that follows it until the worker is done with it
and then clears its delivery, whether the client is still there or not: a client that hangs up
mid-stream leaves the answer to finish, be measured and stored, and nothing of it running here. The
response reads what the task saw (`Watch`): the text so far, then the Result or the error.

`follow` is the one place that knows how the answer so far reaches this process.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from joulebot.chat.deliveries import Delivery
from joulebot.exchange import Result
from joulebot.queueing.client import JobError, JobTimedOut, QueueClient, QueueUnavailable
from joulebot.queueing.connection import is_up
from joulebot.web.openai_asking import QUEUE_AWAY, ApiQueue
from joulebot.web.openai_errors import ApiError

log = logging.getLogger(__name__)

PARTIAL_EVERY_S = 0.1  # how often the answer so far is read while it grows
RESULT_EVERY = 3  # the Result is asked for every this many reads of the answer so far
QUEUE_RETRY_S = 2.0  # how often a task whose Redis went away asks whether it is back


async def follow(client: QueueClient, request_id: str, grew: Callable[[str], None]) -> Result:
    """The Result of a queued request; `grew(text)` with the whole answer so far each time it grew.
    Reads the partial answer the worker publishes (a key rewritten every STREAM_INTERVAL_S) and
    the Result, without holding a thread while it waits. JobError (and its kinds) when there is none."""
    job = await asyncio.to_thread(client.job, request_id)
    shown = ""
    tick = 0
    while True:
        if tick % RESULT_EVERY == 0 and (result := await asyncio.to_thread(client.poll, job, 0)) is not None:
            return result
        text = await asyncio.to_thread(client.partial, request_id)
        if text and text != shown:
            shown = text
            grew(text)
        tick += 1
        await asyncio.sleep(PARTIAL_EVERY_S)


@dataclass
class Watch:
    """What the task following an answer saw, for the response that shows it."""

    text: str = ""
    result: Result | None = None
    error: ApiError | None = None
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    finished: asyncio.Event = field(default_factory=asyncio.Event)

    def grew(self, text: str) -> None:
        self.text = text
        self.changed.set()

    def end(self, result: Result | None = None, error: ApiError | None = None) -> None:
        if not self.finished.is_set():
            self.result, self.error = result, error
            self.finished.set()
            self.changed.set()


def _error(exc: JobError) -> ApiError:
    if isinstance(exc, JobTimedOut):
        return ApiError(504, str(exc), code="timeout")
    return ApiError(503, str(exc), code="no_answer")


async def settle(api: ApiQueue, delivery: Delivery, watch: Watch) -> None:
    """Follow the delivery's answer to its end (across an outage of Redis, for as long as a Result is
    kept), tell `watch`, then clear the delivery: the key's pending answers count it no more."""
    deadline = time.monotonic() + api.settings.result_ttl_s
    while True:
        try:
            watch.end(await follow(api.client, delivery.key, watch.grew))
            break
        except QueueUnavailable:
            away = "; the answer will still be stored in history if it is made"
            watch.end(error=ApiError(503, QUEUE_AWAY + away, code="queue_unavailable"))
            if time.monotonic() > deadline:
                log.warning("gave up following %s: the queue stayed away", delivery.key)
                return
            await asyncio.sleep(QUEUE_RETRY_S)
        except JobError as exc:
            watch.end(error=_error(exc))
            break
    try:
        await asyncio.to_thread(api.deliveries.done, delivery)
    except QueueUnavailable as exc:  # cleared at the next start of the app
        log.warning("could not clear the delivery of %s: %s", delivery.key, exc)


async def resume(api: ApiQueue, spawn: Callable[[Delivery], None]) -> int:
    """At start: follow again every API answer still owed (their clients are gone: only to settle
    them). Redis not answering: nothing (the next start resumes them)."""
    if not await asyncio.to_thread(is_up, api.client.connection):  # an embedded Redis is not started for this
        return 0
    try:
        owed = await asyncio.to_thread(api.deliveries.pending)
    except QueueUnavailable:
        return 0
    for delivery in owed:
        spawn(delivery)
    return len(owed)
