"""What the worker publishes in Redis for the front ends: the models it can run now.

Front ends may run anywhere (they cannot ask the box's Ollama server), so the
worker publishes its catalog next to its queue; a front end without one (no
worker has started yet) falls back to the catalog it can build itself. In a
fleet, the front end's catalog is the union of the live boxes' catalogs: a
model is available when some live box offers it (routing then picks the box).
"""

from __future__ import annotations

from functools import lru_cache

import redis

from joulebot.config import Settings
from joulebot.keys import catalog_key
from joulebot.models import Catalog
from joulebot.models.catalog import Offer
from joulebot.models.inventory import current_catalog
from joulebot.queueing import connection as conn
from joulebot.queueing.client import QueueUnavailable, queue_errors
from joulebot.queueing.fleet import Fleet


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
                if not settings.follows_one_queue and (fleet := fleet_catalog(settings, connection)) is not None:
                    return fleet
                raw = connection.get(catalog_key(settings.queue_name))
        except QueueUnavailable:
            raw = None
        if raw:
            return parsed_catalog(raw)
    return current_catalog(settings)


@lru_cache(maxsize=16)
def parsed_catalog(raw: bytes | str) -> Catalog:
    """A published catalog, parsed once per version: a bot reads it for every message, and the
    worker republishes it only when it changes. (Callers only read a Catalog.)"""
    return Catalog.model_validate_json(raw)


def fleet_catalog(settings: Settings, connection: redis.Redis) -> Catalog | None:
    """The union of the live boxes' published catalogs; None when no box is live."""
    live = Fleet(connection, settings.worker_lost_after_s).live()
    raws = connection.mget([catalog_key(v.profile.queue) for v in live]) if live else []
    catalogs = [parsed_catalog(raw) for raw in raws if raw]
    if not catalogs:
        return None
    offers: dict[str, Offer] = {}
    for catalog in catalogs:
        for offer in catalog.offers:
            known = offers.get(offer.entry.name)
            if known is None or (offer.available and not known.available):
                offers[offer.entry.name] = offer
    return Catalog(offers=list(offers.values()), max_parameters_b=max(c.max_parameters_b for c in catalogs))


def republish_catalog(settings: Settings) -> None:
    """After a pull: front ends see the new model at once (if the queue's Redis is up)."""
    connection = conn.connect(settings, retries=0)
    if conn.is_up(connection):
        publish_catalog(connection, settings.queue_name, current_catalog(settings))
