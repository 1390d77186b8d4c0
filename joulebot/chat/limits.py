"""Per-user limits shared by every bot process (counted in Redis)."""

from __future__ import annotations

import time

import redis

from joulebot.keys import rate_key
from joulebot.queueing.client import queue_errors


class RateLimiter:
    """At most `per_minute` prompts per user in any calendar minute."""

    def __init__(self, connection: redis.Redis, platform: str, per_minute: int) -> None:
        self.connection = connection
        self.platform = platform
        self.per_minute = per_minute

    def allow(self, user_id: str, cost: int = 1) -> bool:
        key = rate_key(self.platform, user_id, int(time.time() // 60))
        with queue_errors(), self.connection.pipeline() as pipe:
            pipe.incrby(key, cost)
            pipe.expire(key, 120)
            used, _ = pipe.execute()
        return int(used) <= self.per_minute
