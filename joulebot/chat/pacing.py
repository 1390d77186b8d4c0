"""A bot's calls to its platform, within the platform's limit for the whole bot: finals first.

Telegram lets a bot send about 30 messages a second in all (edits count); Discord about 50
requests a second. A waiting person's status (queue position, the answer as it grows) is worth
an edit only when the budget has room: a status takes a free slot or is skipped (the next one
shows the newer state anyway). A final answer reserves the next slot and waits for it, ahead of
every status; statuses keep a share of the budget free for the finals that may come.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

TELEGRAM_PER_S = 30.0  # messages a second per bot (Bot API FAQ: "no more than 30 messages per second")
DISCORD_PER_S = 50.0  # requests a second per bot (Discord's global rate limit)
STATUS_SHARE = 2 / 3  # of the budget, the most statuses may take
# Questions a bot takes in at once (checks, the queue's writes, the status message); the rest wait their
# turn. Each ends with a message, which the bot may send about 30-50 a second: more at once would not take
# questions in faster, only crowd out the answers being delivered meanwhile.
INTAKE_AT_ONCE = 16


class Pacer:
    """Slots of 1/`per_second` s: finals wait for the next free one, statuses only take one that is free now.

    One per bot, used from its event loop only (no lock: asyncio runs one call at a time)."""

    def __init__(self, per_second: float, status_share: float = STATUS_SHARE) -> None:
        self.interval = 1.0 / per_second
        self.status_interval = self.interval / status_share
        self.free_at = 0.0  # when the next slot is free (monotonic)
        self.finals_waiting = 0

    async def final(self) -> None:
        """Wait for the next slot (a final answer, or a notice the user must see)."""
        now = time.monotonic()
        at = max(now, self.free_at)
        self.free_at = at + self.interval
        if at > now:
            self.finals_waiting += 1
            try:
                await asyncio.sleep(at - now)
            finally:
                self.finals_waiting -= 1

    def status(self) -> bool:
        """Take a slot now for a status edit, if one is free and no final waits; False: skip this one."""
        now = time.monotonic()
        if self.finals_waiting or self.free_at > now:
            return False
        self.free_at = now + self.status_interval
        return True


@dataclass
class Pacing:
    """One bot's pacing: its budget (`pacer`; None: none) and when each chat (or Discord route: the
    messages of a channel share one bucket) last got a call from it."""

    pacer: Pacer | None = None
    last_call: dict[str, float] = field(default_factory=dict)

    async def turn(self, key: str, interval_s: float, urgent: bool, not_before: float = 0.0) -> bool:
        """Whether `key` may get a call now (`interval_s` after its last one, not before `not_before`);
        an `urgent` caller waits for its turn instead of being refused."""
        delay = max(self.last_call.get(key, -1e9) + interval_s, not_before) - time.monotonic()
        if delay > 0:
            if not urgent:
                return False
            await asyncio.sleep(delay)
        return True

    async def budget(self, urgent: bool) -> bool:
        """A slot of the bot's budget: an `urgent` caller waits for the next, a status only takes a free one."""
        if self.pacer is None:
            return True
        if urgent:
            await self.pacer.final()
            return True
        return self.pacer.status()

    def called(self, key: str) -> None:
        self.last_call[key] = time.monotonic()
