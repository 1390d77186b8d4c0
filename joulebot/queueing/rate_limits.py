"""Per-user rate limits shared by every front end process (counted in Redis)."""

from __future__ import annotations

import time

import redis
from redis.client import Pipeline

from joulebot.keys import rate_key
from joulebot.queueing.client import queue_errors


class RateLimiter:
    """At most `per_minute` prompts per user in any calendar minute."""

    def __init__(self, connection: redis.Redis, platform: str, per_minute: int) -> None:
        self.connection = connection
        self.platform = platform
        self.per_minute = per_minute

    def allow(self, user_id: str, cost: int = 1) -> bool:
        """Count `cost` prompts (one round trip); whether they are within the limit."""
        with queue_errors(), self.connection.pipeline() as pipe:
            self.count(pipe, user_id, cost)
            used, _ = pipe.execute()
        return self.allows(int(used))

    def count(self, pipe: Pipeline, user_id: str, cost: int = 1) -> str:
        """Count `cost` prompts in the caller's pipeline (its replies: this minute's count so far, then the
        expiry's); returns the minute's key, for `refund`."""
        key = rate_key(self.platform, user_id, int(time.time() // 60))
        pipe.incrby(key, cost)
        pipe.expire(key, 120)
        return key

    def allows(self, used: int) -> bool:
        return used <= self.per_minute

    def refund(self, key: str, cost: int = 1) -> None:
        """Take back prompts counted for a question that was refused for another reason."""
        with queue_errors():
            self.connection.decrby(key, cost)
