"""What the dashboard reads from Redis: the queues, their workers and what each box is doing now.

Today a worker publishes its catalog (`joulebot:catalog:QUEUE`), its heartbeat
(`joulebot:worker-alive:QUEUE`), its box lock (`joulebot:box-lock:BOX`, naming its
queue) and, while it cools down, a status line (`joulebot:box-status:QUEUE`); RQ
keeps the queue and the jobs it is running. Everything else a box page shows
comes from history.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import redis
from rq import Queue
from rq.serializers import JSONSerializer

from joulebot.config import Settings
from joulebot.keys import alive_key, box_lock_key, box_status_key, catalog_key
from joulebot.models import Catalog
from joulebot.queueing.connection import socket_path

REDIS_ERRORS = (redis.RedisError, OSError)


class RedisUnavailable(RuntimeError):
    """Redis cannot be read; `str()` is one sentence for the banner."""


@dataclass
class QueueState:
    queue: str
    box: str | None  # the box whose worker holds this queue now (its lock), None when none does
    worker_alive: bool
    state: str  # "idle", "generating", "cooling down…", "no worker"
    queued: int
    running: int
    models: list[str] = field(default_factory=list)


def connect(settings: Settings, timeout_s: float = 2.0) -> redis.Redis:
    """A connection that gives up fast: a page must not hang on a Redis that went away."""
    if settings.redis_url:
        return redis.Redis.from_url(settings.redis_url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s)
    return redis.Redis(
        unix_socket_path=str(socket_path(settings)), socket_timeout=timeout_s, socket_connect_timeout=timeout_s
    )


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _names(connection: redis.Redis, pattern: str) -> set[str]:
    prefix = pattern.removesuffix("*")
    return {_text(key).removeprefix(prefix) for key in connection.scan_iter(match=pattern, count=500)}


def queue_names(connection: redis.Redis, configured: str) -> list[str]:
    """Every queue a worker serves or served: RQ's registry of queues, heartbeats and published catalogs."""
    names = {configured}
    prefix = Queue.redis_queue_namespace_prefix
    names |= {_text(key).removeprefix(prefix) for key in connection.smembers(Queue.redis_queues_keys)}
    names |= _names(connection, alive_key("*"))
    names |= _names(connection, catalog_key("*"))
    return sorted(names)


def boxes_by_queue(connection: redis.Redis) -> dict[str, str]:
    """Queue → box, from the locks the live workers hold (the lock's value names its queue)."""
    found = {}
    for box in _names(connection, box_lock_key("*")):
        try:
            found[str(json.loads(connection.get(box_lock_key(box)) or b"{}")["queue"])] = box
        except (ValueError, KeyError, TypeError):
            continue  # lapsed meanwhile, or not ours to read
    return found


def queue_state(connection: redis.Redis, name: str, box: str | None = None) -> QueueState:
    queue = Queue(name, connection=connection, serializer=JSONSerializer)
    alive = bool(connection.exists(alive_key(name)))
    status = connection.get(box_status_key(name))
    running = queue.started_job_registry.count
    if not alive:
        state = "no worker"
    elif status:
        state = _text(status)
    else:
        state = "generating" if running else "idle"
    raw = connection.get(catalog_key(name))
    models = [e.name for e in Catalog.model_validate_json(raw).available()] if raw else []
    return QueueState(name, box, alive, state, queue.count, running if alive else 0, models)


def read_queues(settings: Settings) -> list[QueueState]:
    connection = connect(settings)
    try:
        boxes = boxes_by_queue(connection)
        return [queue_state(connection, name, boxes.get(name)) for name in queue_names(connection, settings.queue_name)]
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
