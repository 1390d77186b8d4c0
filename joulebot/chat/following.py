"""Following a chat user's questions to their Results, and the deliveries still owed.

A Delivery (`deliveries.py`) is what a chat is owed: kept in Redis until the reply went out,
so a restarted bot resumes it. While the answer is made, the front end is told its status
(queue position, box, the answer so far); if Redis goes away meanwhile, it is told once and
the wait goes on until Redis is back.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable
from typing import Protocol

from joulebot.chat.deliveries import Delivery, DeliveryBook
from joulebot.chat.status import status_text
from joulebot.config import Settings
from joulebot.exchange import GENERATING, Result
from joulebot.queueing.client import JobGone, QueueClient, QueueUnavailable

log = logging.getLogger(__name__)


class ProgressHandler(Protocol):
    """Shows a status text; `urgent` ones are shown even if the last edit was a moment ago."""

    def __call__(self, text: str, /, partial: str | None = None, *, urgent: bool = False) -> Awaitable[None]: ...


QUEUE_WENT_AWAY = (
    "⚠️ joulebot's queue went away while your answer was being made. "
    "I will send it here as soon as the queue is back (or tell you if it was lost)."
)
QUEUE_RETRY_S = 2.0  # how often a waiting delivery asks whether Redis is back


class Following:
    def __init__(self, settings: Settings, client: QueueClient, deliveries: DeliveryBook) -> None:
        self.settings, self.client, self.deliveries = settings, client, deliveries

    async def follow(self, delivery: Delivery, on_status: ProgressHandler) -> list[Result]:
        """Wait for every Result of a delivery, reporting status text as it changes.

        If Redis goes away meanwhile, the user is told at once and the wait goes on
        until it answers again: then the answer is delivered (it was in Redis), or
        JobGone says it was lost (Redis came back without it). JobError otherwise.
        """
        return [await self._follow_one(request_id, on_status) for request_id in delivery.request_ids]

    async def _follow_one(self, request_id: str, on_status: ProgressHandler) -> Result:
        outage = False
        while True:
            try:
                job = await asyncio.to_thread(self.client.job, request_id)
                while True:
                    result = await asyncio.to_thread(self.client.poll, job, 1)
                    if result is not None:
                        return result
                    progress = await asyncio.to_thread(self.client.progress, job)
                    partial = None
                    if progress.state == GENERATING:
                        partial = await asyncio.to_thread(self.client.partial, request_id)
                    await on_status(status_text(progress), partial)
            except QueueUnavailable as exc:
                if not outage:
                    log.warning("%s while following %s; waiting for it to come back", exc, request_id)
                    await on_status(QUEUE_WENT_AWAY, urgent=True)
                outage = True
                await self._until_queue_returns()
            except JobGone:
                if outage:
                    raise JobGone(
                        "joulebot's queue restarted without your question, so its answer was lost; please ask again."
                    ) from None
                raise

    async def _until_queue_returns(self) -> None:
        """Sleep until Redis answers; JobGone if that takes longer than a Result would be kept anyway."""
        deadline = time.monotonic() + self.settings.result_ttl_s
        while not await asyncio.to_thread(self.client.reachable):
            if time.monotonic() > deadline:
                away = self.settings.result_ttl_s
                raise JobGone(f"joulebot's queue was away for over {away} s; your answer was lost")
            await asyncio.sleep(QUEUE_RETRY_S)

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
