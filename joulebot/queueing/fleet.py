"""The fleet: each measurement worker publishes its box's profile; front ends read them all.

A worker's heartbeat writes its profile (zone, intensity, meters, models,
measured means), its state (idle, generating, …) and the Redis server's clock,
each into a hash of its own, by one script, every few seconds. The profile
changes about once an answer; the state, more often, travels on its own. Front
ends read every box with one script call (one round trip, whatever the fleet's
size): state, last beat, the queue's waiting and running counts from RQ's own
keys, and only the profiles that changed since their last read. A box whose last
beat is older than `WORKER_LOST_AFTER_S`, or that said it stopped, is not live.
Times come from the Redis server, so the boxes' and the bots' clocks need not agree.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from functools import cached_property
from typing import Literal

import redis
from pydantic import BaseModel, ConfigDict, ValidationError

from joulebot.keys import box_profile_versions_key, box_profiles_key, box_queues_key, box_seen_key, box_states_key

MeterScope = Literal["wall", "components", "estimate"]

# KEYS: profiles, seen, queues, versions, states. ARGV: box, profile JSON, queue, state.
# A profile that changed is stamped with the next value of the fleet's change counter (field "*"),
# so that a reader asks only for what changed since the counter value it last saw.
_PUBLISH = """
local t = redis.call('TIME')
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
  redis.call('HSET', KEYS[4], ARGV[1], redis.call('HINCRBY', KEYS[4], '*', 1))
end
redis.call('HSET', KEYS[2], ARGV[1], tostring(t[1] + t[2] / 1000000))
redis.call('HSET', KEYS[3], ARGV[1], ARGV[3])
redis.call('HSET', KEYS[5], ARGV[1], ARGV[4])
return 1
"""

# KEYS: profiles, seen, queues, versions, states. ARGV: the change counter the reader saw last (0: none).
# Returns the server's time, the counter, one JSON array of [box, last beat, waiting, running, state], then
# box, profile pairs for the profiles changed since the reader's counter (all of them if the counter
# went back: a Redis that lost its data). Reads RQ's queue list and started registry of each box's
# queue (not declared in KEYS: fine on the one Redis server joulebot uses).
_READ = """
local t = redis.call('TIME')
local function map(key)
  local flat, m = redis.call('HGETALL', key), {}
  for i = 1, #flat, 2 do m[flat[i]] = flat[i + 1] end
  return m
end
local seen, versions, states = map(KEYS[2]), map(KEYS[4]), map(KEYS[5])
local counter = tonumber(versions['*'] or '0')
local since = tonumber(ARGV[1])
if counter < since then since = -1 end
local rows, out = {}, {tostring(t[1] + t[2] / 1000000), tostring(counter), ''}
local queues = redis.call('HGETALL', KEYS[3])
for i = 1, #queues, 2 do
  local box, queue = queues[i], queues[i + 1]
  rows[#rows + 1] = {box, tonumber(seen[box] or '0'), redis.call('LLEN', 'rq:queue:' .. queue),
                     redis.call('ZCARD', 'rq:wip:' .. queue), states[box] or 'starting'}
  if tonumber(versions[box] or '0') > since then
    out[#out + 1] = box
    out[#out + 1] = redis.call('HGET', KEYS[1], box) or ''
  end
end
if #rows > 0 then out[3] = cjson.encode(rows) else out[3] = '[]' end
return out
"""

# KEYS: profiles, seen, queues, versions, states. ARGV: box.
_FORGET = """
for i = 1, 5 do redis.call('HDEL', KEYS[i], ARGV[1]) end
return 1
"""

KEYS = (box_profiles_key(), box_seen_key(), box_queues_key(), box_profile_versions_key(), box_states_key())


class BoxModel(BaseModel):
    model_config = ConfigDict(defer_build=True)  # see BoxProfile

    name: str
    size: str  # "135M", "8.0B"
    parameters_b: float
    vision: bool = False  # takes images on this box


class MeanEnergy(BaseModel):
    """What one model measured on one box for one kind of task (never mixed with other boxes)."""

    model_config = ConfigDict(defer_build=True)  # see BoxProfile

    model: str
    category: str
    answers: int
    mean_total_j: float
    mean_seconds: float


class BoxProfile(BaseModel):
    # Front ends import this module but validate it only where there are several boxes: its
    # validator is built on first use, not on every `joulebot ask`'s import.
    model_config = ConfigDict(defer_build=True)

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
    means: list[MeanEnergy] = []
    embodied_g_per_s: float = 0.0  # the embodied share of one second of this box

    def offers(self, model: str, vision: bool = False) -> bool:
        """Whether this box runs `model` (and, for a question with images, whether it sees them here)."""
        return model in (self.seeing_names if vision else self.model_names)

    def mean(self, model: str, category: str | None) -> MeanEnergy | None:
        return self.means_index.get((model, category))

    def mean_seconds(self, model: str) -> float | None:
        """Mean answer time of a model on this box over every task (answers-weighted)."""
        return self.seconds_by_model.get(model)

    @cached_property
    def answer_seconds(self) -> float | None:
        """Mean answer time on this box over everything it answered (for its queue's expected wait)."""
        answers = sum(m.answers for m in self.means)
        return sum(m.mean_seconds * m.answers for m in self.means) / answers if answers else None

    # indexes, built once per profile (a front end keeps parsed profiles until they change)
    @cached_property
    def model_names(self) -> set[str]:
        return {m.name for m in self.models}

    @cached_property
    def seeing_names(self) -> set[str]:
        return {m.name for m in self.models if m.vision}

    @cached_property
    def means_index(self) -> dict[tuple[str, str | None], MeanEnergy]:
        return {(m.model, m.category): m for m in self.means}

    @cached_property
    def seconds_by_model(self) -> dict[str, float]:
        totals: dict[str, list[float]] = {}
        for m in self.means:
            acc = totals.setdefault(m.model, [0.0, 0.0])
            acc[0] += m.mean_seconds * m.answers
            acc[1] += m.answers
        return {model: s / n for model, (s, n) in totals.items() if n}


@dataclass(frozen=True, slots=True)
class BoxView:
    """A box as a front end sees it now."""

    profile: BoxProfile
    seen_age_s: float  # seconds since its last heartbeat
    queued: int  # jobs waiting in its queue
    running: int  # jobs its worker runs now (0 or 1)
    live: bool
    state: str  # idle, generating, cooling down (…), loading model, …, stopped

    @property
    def name(self) -> str:
        return self.profile.box

    @property
    def load(self) -> int:
        return self.queued + self.running

    def as_json(self) -> dict:
        return {
            "profile": self.profile.model_dump(mode="json"),
            "seen_age_s": self.seen_age_s,
            "queued": self.queued,
            "running": self.running,
            "live": self.live,
            "state": self.state,
        }


def publish_profile(connection: redis.Redis, profile: BoxProfile, state: str) -> None:
    connection.eval(_PUBLISH, len(KEYS), *KEYS, profile.box, profile.model_dump_json(), profile.queue, state)


class Fleet:
    """Reads every box, in one round trip (a server-side script); parses only profiles that changed."""

    def __init__(self, connection: redis.Redis, lost_after_s: float) -> None:
        self.connection = connection
        self.lost_after_s = lost_after_s
        self._read = connection.register_script(_READ)  # EVALSHA, loaded on first use
        self._profiles: dict[str, BoxProfile | None] = {}  # parsed, as of change counter `_counter`
        self._counter = 0
        self.round_trips = 0  # for the benchmark

    def boxes(self) -> list[BoxView]:
        """Every box that ever published (alive or lately seen), by name."""
        self.round_trips += 1
        reply = self._read(keys=list(KEYS), args=[self._counter])
        now, counter, rows = float(reply[0]), int(reply[1]), json.loads(reply[2])
        if counter < self._counter:
            self._profiles = {}  # Redis lost its data and started counting again
        for i in range(3, len(reply), 2):
            self._profiles[reply[i].decode()] = _parse(reply[i + 1])
        self._counter = counter
        views = []
        for box, seen, queued, running, state in rows:
            profile = self._profiles.get(box)
            if profile is None:
                continue
            age = max(0.0, now - seen)
            live = age < self.lost_after_s and state != "stopped"
            views.append(BoxView(profile, age, queued, running, live, state))
        return sorted(views, key=lambda v: v.name)

    def live(self) -> list[BoxView]:
        return [v for v in self.boxes() if v.live]

    def forget_older_than(self, seconds: float) -> list[str]:
        """Drop boxes whose heartbeat stopped more than `seconds` ago (a worker does this at start)."""
        gone = [v.name for v in self.boxes() if v.seen_age_s > seconds]
        for name in gone:
            self.connection.eval(_FORGET, len(KEYS), *KEYS, name)
        return gone


def _parse(raw: bytes) -> BoxProfile | None:
    try:
        return BoxProfile.model_validate_json(raw) if raw else None
    except ValidationError:
        return None  # written by a newer or older joulebot: not ours to route to


def mark_stopped(connection: redis.Redis, profile: BoxProfile) -> None:
    """A worker that stops says so at once: front ends need not wait for its heartbeat to lapse."""
    with contextlib.suppress(redis.ConnectionError, redis.TimeoutError, FileNotFoundError):
        publish_profile(connection, profile, "stopped")
