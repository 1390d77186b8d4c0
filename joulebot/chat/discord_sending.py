"""Sending to Discord through transient trouble (see `sending`).

discord.py waits out 429s as Discord says (retry_after) and retries 500, 502 and 504 itself; a
dropped connection (a reset on Linux, a server hanging up), a timeout or a 503 it raises at once.
Those are retried here, and a question whose status message still cannot be shown is queued all
the same: its answer comes as a new message.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import aiohttp
import discord

from joulebot.chat.sending import retried

log = logging.getLogger(__name__)

TRANSIENT = (aiohttp.ClientConnectionError, asyncio.TimeoutError, discord.DiscordServerError)

__all__ = ["TRANSIENT", "queued_status", "retried"]


async def queued_status(send: Callable[[], Awaitable[discord.Message]]) -> discord.Message | None:
    """The "⏳ queued" status message; None if it still cannot be shown after the retries."""
    try:
        return await retried(send, TRANSIENT, "the status message")
    except TRANSIENT as exc:
        log.warning("no status message (%s: %s); the answer will come without one", type(exc).__name__, exc)
        return None
