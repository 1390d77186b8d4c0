"""Every queue and what its box does now, for the dashboard and /metrics.

What a box does is read one way, the fleet's (`Fleet.boxes`: the profile, state
and last beat its worker's heartbeat publishes, and its queue's counts), the
same read routing makes. Queues no box announces (their worker never started,
or is still warming up) come from RQ's list of queues and the configured queue
name, with their counts and whether a worker heartbeats on them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import redis
from rq import Queue
from rq.serializers import JSONSerializer

from joulebot.config import Settings
from joulebot.keys import alive_key
from joulebot.queueing import connection as conn
from joulebot.queueing.fleet import BoxView, Fleet

REDIS_ERRORS = (redis.RedisError, OSError)
PAGE_TIMEOUT_S = 2.0  # a page must not hang on a Redis that went away


class RedisUnavailable(RuntimeError):
    """Redis cannot be read; `str()` is one sentence for the banner."""


@dataclass(frozen=True)
class QueueState:
    queue: str
    box: str | None  # the box that announced this queue as its own, None when none did
    worker_alive: bool
    state: str  # "idle", "generating", "cooling down (…)", …, "starting", "no worker"
    queued: int
    running: int
    models: list[str] = field(default_factory=list)


def _announced(view: BoxView) -> QueueState:
    profile = view.profile
    models = [m.name for m in profile.models]
    if not view.live:
        return QueueState(profile.queue, view.name, False, "no worker", view.queued, 0, models)
    return QueueState(profile.queue, view.name, True, view.state, view.queued, view.running, models)


def _unannounced(connection: redis.Redis, name: str) -> QueueState:
    queue = Queue(name, connection=connection, serializer=JSONSerializer)
    alive = bool(connection.exists(alive_key(name)))
    running = queue.started_job_registry.count if alive else 0
    return QueueState(name, None, alive, "starting" if alive else "no worker", queue.count, running)


def _queue_names(connection: redis.Redis) -> set[str]:
    """RQ's registry of queues (a queue appears there once something was queued on it)."""
    prefix = Queue.redis_queue_namespace_prefix
    return {
        (key.decode() if isinstance(key, bytes) else key).removeprefix(prefix)
        for key in connection.smembers(Queue.redis_queues_keys)
    }


def read_queues(settings: Settings) -> list[QueueState]:
    """Every queue by name: those the boxes announce, RQ's and the configured one. RedisUnavailable
    (one sentence) when Redis cannot be read; an embedded Redis that is not running is not started."""
    connection = conn.connect(settings, retries=0, socket_timeout=PAGE_TIMEOUT_S, connect_timeout=PAGE_TIMEOUT_S)
    try:
        views = Fleet(connection, settings.worker_lost_after_s).boxes()
        by_queue: dict[str, QueueState] = {}
        for view in sorted(views, key=lambda v: v.live):  # a live box wins a queue a stopped one also named
            by_queue[view.profile.queue] = _announced(view)
        for name in (_queue_names(connection) | {settings.queue_name}) - set(by_queue):
            by_queue[name] = _unannounced(connection, name)
        return [by_queue[name] for name in sorted(by_queue)]
    except REDIS_ERRORS as exc:
        if not settings.redis_url:
            raise RedisUnavailable(
                "The embedded Redis is not running (joulebot ask or joulebot worker starts it): "
                "queue lengths and box states are missing."
            ) from None
        raise RedisUnavailable(
            f"Redis is not reachable ({type(exc).__name__}): queue lengths and box states are missing."
        ) from None
    finally:
        connection.close()
