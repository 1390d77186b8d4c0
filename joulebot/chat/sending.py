"""Sending to a chat platform through transient trouble: a dropped connection, a timeout, a 5xx.

Under load a send can fail once and work a moment later; a question must not be dropped for
that. Each front end says which of its library's errors are transient (flood control, 429, is
waited out as the platform says, by the library or by the caller); those are retried with
exponential backoff and jitter, so that many chats failing at once do not retry in step.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

log = logging.getLogger(__name__)

SEND_ATTEMPTS = 6  # about 15 s of backoff in all before a send is given up
T = TypeVar("T")


def backoff_s(attempt: int) -> float:
    """How long to wait after failed attempt number `attempt` (0-based): up to 0.5, 1, 2, 4, 8 s."""
    return random.uniform(0.5, 1.0) * min(0.5 * 2**attempt, 8.0)


async def retried(send: Callable[[], Awaitable[T]], transient: tuple[type[BaseException], ...], what: str) -> T:
    """`send()`, again after each transient error, at most SEND_ATTEMPTS times; the last error is raised."""
    for attempt in range(SEND_ATTEMPTS - 1):
        try:
            return await send()
        except transient as exc:
            log.info("%s failed (%s: %s); retrying", what, type(exc).__name__, exc)
            await asyncio.sleep(backoff_s(attempt))
    return await send()
