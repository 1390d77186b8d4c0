"""Following a chat user's questions to their Results, and the deliveries still owed.

A Delivery (`deliveries.py`) is what a chat is owed: kept in Redis until the reply went out,
so a restarted bot resumes it. The process's one `Follower` (queueing) waits on every answer at
once; each delivery's task turns its events into the status the front end shows (queue position,
box, the answer so far) and returns the Results. If Redis goes away meanwhile, the user is told
once and the wait goes on until Redis is back. A status the front end could not show yet (its
chat's turn, or the bot's budget) is offered again a moment later, unless a newer one came.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from dataclasses import replace
from typing import Protocol

from joulebot.chat.status import status_text
from joulebot.exchange import GENERATING, Result
from joulebot.queueing.client import Progress, QueueUnavailable
from joulebot.queueing.deliveries import Delivery, DeliveryBook
from joulebot.queueing.follower import Delta, Finished, Follower, QueueAway, Status

log = logging.getLogger(__name__)


class ProgressHandler(Protocol):
    """Shows a status text (under the answer so far, once there is one); `urgent` ones wait for their
    turn instead of being skipped. Returns whether it shows now (False: skipped, offer it again)."""

    def __call__(self, text: str, /, partial: str | None = None, *, urgent: bool = False) -> Awaitable[bool]: ...


QUEUE_WENT_AWAY = (
    "⚠️ joulebot's queue went away while your answer was being made. "
    "I will send it here as soon as the queue is back (or tell you if it was lost)."
)
AGAIN_S = 1.5  # a status not shown (not the chat's turn, or over the bot's budget) is offered again after this


class Following:
    def __init__(self, follower: Follower, deliveries: DeliveryBook) -> None:
        self.follower, self.deliveries = follower, deliveries

    async def follow(self, delivery: Delivery, on_status: ProgressHandler) -> list[Result]:
        """Wait for every Result of a delivery, reporting status text as it changes.

        If Redis goes away meanwhile, the user is told at once and the wait goes on
        until it answers again: then the answer is delivered (it was in Redis), or
        JobGone says it was lost (Redis came back without it). JobError otherwise.
        """
        return [await self._follow_one(request_id, on_status) for request_id in delivery.request_ids]

    async def _follow_one(self, request_id: str, on_status: ProgressHandler) -> Result:
        progress: Progress | None = None
        answer: str | None = None
        shown = True
        async with self.follower.watch(request_id) as watch:
            while True:
                event = await watch.next(None if shown else AGAIN_S)
                if isinstance(event, Finished):
                    return event.result
                if isinstance(event, QueueAway):
                    await on_status(QUEUE_WENT_AWAY, urgent=True)
                    continue
                if isinstance(event, Status):
                    progress = event.progress
                elif isinstance(event, Delta):
                    answer = event.answer
                    if progress is None:
                        progress = Progress(GENERATING)
                    elif progress.state != GENERATING:  # its stage is read once a second, its words as they come
                        progress = replace(progress, state=GENERATING, position=None)
                if progress is None:
                    continue
                partial = answer if progress.state == GENERATING else None
                shown = await on_status(status_text(progress), partial)

    # -- what is owed ---------------------------------------------------------
    def pending(self) -> list[Delivery]:
        """Answers this platform still owes (from before a restart, too); none while Redis does not answer
        (the next start resumes them)."""
        try:
            return self.deliveries.pending()
        except QueueUnavailable as exc:
            log.warning("cannot resume pending answers: %s", exc)
            return []

    def save(self, delivery: Delivery) -> None:
        """Keep a still-owed delivery's new messages (if Redis is away, a restart may not edit them)."""
        try:
            self.deliveries.save(delivery)
        except QueueUnavailable as exc:
            log.warning("could not keep the messages of %s: %s", delivery.key, exc)

    def delivered(self, delivery: Delivery) -> None:
        """The reply went out: forget the delivery (if Redis is away, it is sent once more at the next start)."""
        try:
            self.deliveries.done(delivery)
        except QueueUnavailable as exc:
            log.warning("could not mark %s delivered: %s", delivery.key, exc)
