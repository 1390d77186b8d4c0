"""Answers still owed to the users of a front end, kept in Redis so a restarted bot delivers them.

A front end records a Delivery when it queues a user's request(s) (in the same transaction) and
removes it once the reply is sent; a bot resumes every Delivery of its platform on start: the
Results wait in Redis (for `RESULT_TTL_S`), not in its memory. Each front end decides what it owes;
this is where that is kept, with the rest of what front ends write to Redis. Redis not answering is
`QueueUnavailable`, as everywhere on the client side.
"""

from __future__ import annotations

from datetime import UTC, datetime

import redis
from pydantic import BaseModel, Field
from redis.client import Pipeline

from joulebot.exchange import Units
from joulebot.keys import deliveries_key, user_deliveries_key
from joulebot.queueing.client import queue_errors


class Delivery(BaseModel):
    request_ids: list[str]  # one for /ask, two for /compare (in order)
    platform: str
    user_id: str
    chat_id: str
    units: Units
    status_message_id: str | None = None  # the message to replace with the answer
    # the messages after it that show the answer so far (a long answer streams on in them), in order:
    # kept here so that a restarted bot edits them, never leaving a stale copy beside a new one
    more_message_ids: list[str] = []
    reply_to: str | None = None  # platform extras (e.g. an interaction token)
    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC))

    @property
    def key(self) -> str:
        return self.request_ids[0]


class DeliveryBook:
    def __init__(self, connection: redis.Redis, platform: str) -> None:
        self.connection = connection
        self.platform = platform
        self.hash = deliveries_key(platform)

    def _user_set(self, user_id: str) -> str:
        return user_deliveries_key(self.platform, user_id)

    def add(self, delivery: Delivery, pipe: Pipeline) -> None:
        """Written in the caller's MULTI/EXEC transaction, with the jobs it delivers: all or nothing."""
        pipe.hset(self.hash, delivery.key, delivery.model_dump_json())
        pipe.sadd(self._user_set(delivery.user_id), delivery.key)

    def save(self, delivery: Delivery) -> None:
        """Keep what changed in a delivery still owed (the messages it streams into)."""
        with queue_errors():
            self.connection.hset(self.hash, delivery.key, delivery.model_dump_json())

    def done(self, delivery: Delivery) -> None:
        with queue_errors(), self.connection.pipeline() as pipe:
            pipe.hdel(self.hash, delivery.key)
            pipe.srem(self._user_set(delivery.user_id), delivery.key)
            pipe.execute()

    def pending(self) -> list[Delivery]:
        with queue_errors():
            return [Delivery.model_validate_json(raw) for raw in self.connection.hvals(self.hash)]

    def count_pending(self, pipe: Pipeline, user_id: str) -> None:
        """The user's answers still owed, counted in the caller's pipeline."""
        pipe.scard(self._user_set(user_id))

    def pending_of(self, user_id: str) -> list[Delivery]:
        """One user's answers still owed, oldest first."""
        with queue_errors():
            keys = list(self.connection.smembers(self._user_set(user_id)))
            raws = self.connection.hmget(self.hash, keys) if keys else []
        owed = [Delivery.model_validate_json(raw) for raw in raws if raw]
        return sorted(owed, key=lambda d: d.created_at)

    def pending_for(self, user_id: str) -> int:
        with queue_errors():
            return int(self.connection.scard(self._user_set(user_id)))
