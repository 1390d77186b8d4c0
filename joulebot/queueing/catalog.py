"""What the worker publishes in Redis for the front ends: the models it can run now.

Front ends may run anywhere (they cannot ask the box's Ollama server), so the
worker publishes its catalog next to its queue; a front end without one (no
worker has started yet) falls back to the catalog it can build itself.
"""

from __future__ import annotations

import redis

from joulebot.config import Settings
from joulebot.keys import catalog_key
from joulebot.models import Catalog
from joulebot.models.inventory import current_catalog
from joulebot.queueing import connection as conn
from joulebot.queueing.client import QueueUnavailable, queue_errors


def publish_catalog(connection: redis.Redis, queue_name: str, catalog: Catalog) -> None:
    connection.set(catalog_key(queue_name), catalog.model_dump_json())


def catalog_for_front_end(settings: Settings, connection: redis.Redis | None = None) -> Catalog:
    """The worker's published catalog if Redis has one, else a locally built one.

    An embedded Redis that is not running is not started for this.
    """
    if connection is None:
        connection = conn.connect(settings, retries=0)
        if settings.embedded_redis and not conn.is_up(connection):
            connection = None
    if connection is not None:
        try:
            with queue_errors(settings):  # a REDIS_URL the server refuses is a SettingsError
                raw = connection.get(catalog_key(settings.queue_name))
        except QueueUnavailable:
            raw = None
        if raw:
            return Catalog.model_validate_json(raw)
    return current_catalog(settings)


def republish_catalog(settings: Settings) -> None:
    """After a pull: front ends see the new model at once (if the queue's Redis is up)."""
    connection = conn.connect(settings, retries=0)
    if conn.is_up(connection):
        publish_catalog(connection, settings.queue_name, current_catalog(settings))
