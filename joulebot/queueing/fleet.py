"""The fleet: each measurement worker publishes its box's profile; front ends read them all.

A worker's heartbeat writes its profile (zone, intensity, meters, models, state,
measured means) into one hash and the Redis server's clock into another, by one
script, every few seconds. Front ends read every box with one script call (one
round trip, whatever the fleet's size): profile, last beat, and the queue's
waiting and running counts from RQ's own keys. A box whose last beat is older
than `WORKER_LOST_AFTER_S`, or that said it stopped, is not live. Times come from
the Redis server, so the boxes' and the bots' clocks need not agree.
"""

from __future__ import annotations

import contextlib
import os
import socket
from typing import Literal

import redis
from pydantic import BaseModel, ValidationError

from joulebot.keys import box_profiles_key, box_queues_key, box_seen_key

MeterScope = Literal["wall", "components", "estimate"]

# KEYS: profiles, seen, queues. ARGV: box, profile JSON, queue.
_PUBLISH = """
local t = redis.call('TIME')
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('HSET', KEYS[2], ARGV[1], tostring(t[1] + t[2] / 1000000))
redis.call('HSET', KEYS[3], ARGV[1], ARGV[3])
return 1
"""

# KEYS: profiles, seen, queues. Reads RQ's queue list and started registry of each box's queue
# (not declared in KEYS: fine on one Redis server, which is what joulebot runs on).
_READ = """
local t = redis.call('TIME')
local out = {tostring(t[1] + t[2] / 1000000)}
local queues = redis.call('HGETALL', KEYS[3])
for i = 1, #queues, 2 do
  local box, queue = queues[i], queues[i + 1]
  out[#out + 1] = box
  out[#out + 1] = redis.call('HGET', KEYS[1], box) or ''
  out[#out + 1] = redis.call('HGET', KEYS[2], box) or '0'
  out[#out + 1] = redis.call('LLEN', 'rq:queue:' .. queue)
  out[#out + 1] = redis.call('ZCARD', 'rq:wip:' .. queue)
end
return out
"""

# KEYS: profiles, seen, queues. ARGV: box.
_FORGET = """
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[1])
return 1
"""

KEYS = (box_profiles_key(), box_seen_key(), box_queues_key())


class BoxModel(BaseModel):
    name: str
    size: str  # "135M", "8.0B"
    parameters_b: float


class MeanEnergy(BaseModel):
    """What one model measured on one box for one kind of task (never mixed with other boxes)."""

    model: str
    category: str
    answers: int
    mean_total_j: float
    mean_seconds: float


class BoxProfile(BaseModel):
    box: str
    queue: str
    host: str = ""
    pid: int = 0
    zone: str
    intensity_g_per_kwh: float
    intensity_provenance: str  # live, cached, static
    intensity_label: str  # the footer's provenance text
    meter_scope: MeterScope  # what the box's energy figures cover
    meters: list[str]  # each meter, described
    models: list[BoxModel]
    state: str = "starting"  # idle, generating, cooling down (…), loading model, …, stopped
    means: list[MeanEnergy] = []
    embodied_g_per_s: float = 0.0  # the embodied share of one second of this box

    def offers(self, model: str) -> bool:
        return any(m.name == model for m in self.models)

    def mean(self, model: str, category: str | None) -> MeanEnergy | None:
        return next((m for m in self.means if m.model == model and m.category == category), None)

    def mean_seconds(self, model: str) -> float | None:
        """Mean answer time of a model on this box over every task (answers-weighted)."""
        rows = [m for m in self.means if m.model == model]
        answers = sum(m.answers for m in rows)
        return sum(m.mean_seconds * m.answers for m in rows) / answers if answers else None


class BoxView(BaseModel):
    """A box as a front end sees it now."""

    profile: BoxProfile
    seen_age_s: float  # seconds since its last heartbeat
    queued: int  # jobs waiting in its queue
    running: int  # jobs its worker runs now (0 or 1)
    live: bool

    @property
    def name(self) -> str:
        return self.profile.box

    @property
    def load(self) -> int:
        return self.queued + self.running


def describe_owner() -> tuple[str, int]:
    return socket.gethostname(), os.getpid()


def publish_profile(connection: redis.Redis, profile: BoxProfile) -> None:
    connection.eval(_PUBLISH, 3, *KEYS, profile.box, profile.model_dump_json(), profile.queue)


class Fleet:
    """Reads every box's profile, in one round trip (a server-side script)."""

    def __init__(self, connection: redis.Redis, lost_after_s: float) -> None:
        self.connection = connection
        self.lost_after_s = lost_after_s
        self._read = connection.register_script(_READ)  # EVALSHA, loaded on first use
        self.round_trips = 0  # for the benchmark

    def boxes(self) -> list[BoxView]:
        """Every box that ever published (alive or lately seen), by name."""
        self.round_trips += 1
        reply = self._read(keys=list(KEYS))
        now = float(reply[0])
        views = []
        for i in range(1, len(reply), 5):
            raw, seen = reply[i + 1], float(reply[i + 2])
            if not raw:
                continue
            try:
                profile = BoxProfile.model_validate_json(raw)
            except ValidationError:
                continue  # written by a newer or older joulebot: not ours to route to
            age = max(0.0, now - seen)
            live = age < self.lost_after_s and profile.state != "stopped"
            queued, running = int(reply[i + 3]), int(reply[i + 4])
            views.append(BoxView(profile=profile, seen_age_s=age, queued=queued, running=running, live=live))
        return sorted(views, key=lambda v: v.name)

    def live(self) -> list[BoxView]:
        return [v for v in self.boxes() if v.live]

    def forget_older_than(self, seconds: float) -> list[str]:
        """Drop boxes whose heartbeat stopped more than `seconds` ago (a worker does this at start)."""
        gone = [v.name for v in self.boxes() if v.seen_age_s > seconds]
        for name in gone:
            self.connection.eval(_FORGET, 3, *KEYS, name)
        return gone


def mark_stopped(connection: redis.Redis, profile: BoxProfile) -> None:
    """A worker that stops says so at once: front ends need not wait for its heartbeat to lapse."""
    with contextlib.suppress(redis.ConnectionError, redis.TimeoutError, FileNotFoundError):
        publish_profile(connection, profile.model_copy(update={"state": "stopped"}))
