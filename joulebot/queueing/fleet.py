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
import logging
import math
from dataclasses import dataclass
from functools import cached_property
from typing import Literal

import redis
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from joulebot.keys import box_profile_versions_key, box_profiles_key, box_queues_key, box_seen_key, box_states_key

log = logging.getLogger(__name__)

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

# KEYS: profiles, seen, queues, versions, states, then RQ's own keys of every queue the reader knows: its
# waiting list and its started registry, a pair per queue. ARGV: the change counter the reader saw last
# (0: none), then the names of those queues, in the order of their pairs.
# Returns the server's time, the counter, one JSON array of [box, queue, last beat, waiting, running, state],
# then box, profile pairs for the profiles changed since the reader's counter (all of them if the counter
# went back: a Redis that lost its data). A box whose queue the reader did not pass gets -1 for both counts
# (the reader then asks once more, with it). Whatever a hash holds, the script runs to the end: the values
# are checked by the reader, a count of a key of the wrong type is 0.
_READ = """
local t = redis.call('TIME')
local function map(key)
  local flat, m = redis.call('HGETALL', key), {}
  for i = 1, #flat, 2 do m[flat[i]] = flat[i + 1] end
  return m
end
local function count(command, key)
  local n = redis.pcall(command, key)
  if type(n) == 'number' then return n end
  return 0
end
local seen, versions, states = map(KEYS[2]), map(KEYS[4]), map(KEYS[5])
local counter = tonumber(versions['*'] or '0') or 0
local since = tonumber(ARGV[1])
if counter < since then since = -1 end
local pair = {}
for i = 2, #ARGV do pair[ARGV[i]] = 2 * i + 2 end
local rows, out = {}, {tostring(t[1] + t[2] / 1000000), tostring(counter), ''}
local queues = redis.call('HGETALL', KEYS[3])
for i = 1, #queues, 2 do
  local box, queue = queues[i], queues[i + 1]
  local waiting, running, k = -1, -1, pair[queue]
  if k then waiting, running = count('LLEN', KEYS[k]), count('ZCARD', KEYS[k + 1]) end
  rows[#rows + 1] = {box, queue, seen[box] or '', waiting, running, states[box] or 'starting'}
  if (tonumber(versions[box] or '0') or 0) > since then
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
_RQ_KEYS: dict[str, tuple[str, str]] = {}  # queue → RQ's keys (`rq_keys`), learnt once per process


# What a box publishes is checked where a front end reads it: figures that routing multiplies and
# compares are finite and never negative (a zero intensity is a real one: the direct emission factor of
# a zone without combustion).
_CHECKED = ConfigDict(defer_build=True, allow_inf_nan=False)  # defer_build: see BoxProfile


class BoxModel(BaseModel):
    model_config = _CHECKED

    name: str
    size: str  # "135M", "8.0B"
    parameters_b: float = Field(ge=0)
    vision: bool = False  # takes images on this box


class MeanEnergy(BaseModel):
    """What one model measured on one box for one kind of task (never mixed with other boxes)."""

    model_config = _CHECKED

    model: str
    category: str
    answers: int = Field(ge=0)
    mean_total_j: float = Field(ge=0)
    mean_seconds: float = Field(ge=0)


class BoxProfile(BaseModel):
    # Front ends import this module but validate it only where there are several boxes: its
    # validator is built on first use, not on every `joulebot ask`'s import.
    model_config = _CHECKED

    box: str
    queue: str
    host: str = ""
    pid: int = Field(default=0, ge=0)
    zone: str
    intensity_g_per_kwh: float = Field(ge=0)
    intensity_provenance: str  # live, cached, static
    intensity_label: str  # the footer's provenance text
    meter_scope: MeterScope  # what the box's energy figures cover
    meters: list[str]  # each meter, described
    models: list[BoxModel]
    means: list[MeanEnergy] = []
    embodied_g_per_s: float = Field(default=0.0, ge=0)  # the embodied share of one second of this box

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
    """Reads every box, in one round trip (a server-side script); parses only profiles that changed.

    What a box wrote is checked here, where a front end first reads it: a profile that does not
    validate (negative or non-finite figures, a box name that is not its own), or a last beat that is
    not a number, leaves that box out, logged once, and never reaches routing."""

    def __init__(self, connection: redis.Redis, lost_after_s: float) -> None:
        self.connection = connection
        self.lost_after_s = lost_after_s
        self._read = connection.register_script(_READ)  # EVALSHA, loaded on first use
        self._profiles: dict[str, BoxProfile | None] = {}  # parsed, as of change counter `_counter`
        self._counter = 0
        self._ignored: set[tuple[str, str]] = set()  # (box, why), logged once
        self.round_trips = 0  # for the benchmark

    def boxes(self) -> list[BoxView]:
        """Every box that ever published (alive or lately seen), by name."""
        now, rows = self._read_all()
        if any(waiting < 0 and queue not in _RQ_KEYS for _, queue, _, waiting, _, _ in rows):
            for queue in {row[1] for row in rows}:  # a box new to this process: learn its queue, ask again
                _RQ_KEYS.setdefault(queue, rq_keys(self.connection, queue))
            now, rows = self._read_all()
        views = []
        for box, _queue, seen, queued, running, state in rows:
            profile, beat = self._profiles.get(box), _number(seen)
            if profile is None:  # none, or one that does not validate (said when it was read)
                continue
            if beat is None:
                self._ignore(box, f"its last beat is not a number ({seen!r:.40})")
                continue
            age = max(0.0, now - beat)
            live = age < self.lost_after_s and state != "stopped"
            views.append(BoxView(profile, age, max(queued, 0), max(running, 0), live, str(state)))
        return sorted(views, key=lambda v: v.name)

    def _read_all(self) -> tuple[float, list[tuple[str, str, object, int, int, object]]]:
        """The server's time and one row per box; the changed profiles parsed on the way."""
        self.round_trips += 1
        queues = list(_RQ_KEYS)
        keys = [*KEYS, *(key for queue in queues for key in _RQ_KEYS[queue])]
        reply = self._read(keys=keys, args=[self._counter, *queues])
        now, counter = float(reply[0]), int(reply[1])
        if counter < self._counter:
            self._profiles = {}  # Redis lost its data and started counting again
        for i in range(3, len(reply), 2):
            box = _text(reply[i])
            self._profiles[box] = _parse(box, reply[i + 1])
        self._counter = counter
        rows = json.loads(_text(reply[2]))
        return now, [(str(r[0]), str(r[1]), r[2], int(r[3]), int(r[4]), r[5]) for r in rows if isinstance(r, list)]

    def _ignore(self, box: str, why: str) -> None:
        if (box, why) not in self._ignored:
            self._ignored.add((box, why))
            log.warning("box %r left out: %s (written to Redis by something other than its worker?)", box, why)

    def live(self) -> list[BoxView]:
        return [v for v in self.boxes() if v.live]

    def forget_older_than(self, seconds: float) -> list[str]:
        """Drop boxes whose heartbeat stopped more than `seconds` ago (a worker does this at start)."""
        gone = [v.name for v in self.boxes() if v.seen_age_s > seconds]
        for name in gone:
            self.connection.eval(_FORGET, len(KEYS), *KEYS, name)
        return gone


def rq_keys(connection: redis.Redis, queue_name: str) -> tuple[str, str]:
    """RQ's own keys of a queue, from RQ's own objects: its list of waiting jobs and its started registry."""
    from rq import Queue  # front ends read the fleet without RQ until there is a box
    from rq.registry import StartedJobRegistry

    queue = Queue(queue_name, connection=connection)
    return queue.key, StartedJobRegistry(queue=queue).key


def _text(raw: bytes | str) -> str:
    return raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else str(raw)


def _number(raw: object) -> float | None:
    """A finite number (a Redis server time, seconds), else None."""
    if not isinstance(raw, str | int | float):
        return None
    try:
        value = float(raw)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _parse(box: str, raw: bytes) -> BoxProfile | None:
    try:
        profile = BoxProfile.model_validate_json(raw) if raw else None
    except ValidationError as exc:
        log.warning("box %r left out: its profile does not validate (%d errors)", box, exc.error_count())
        return None  # written by a newer or older joulebot, or by something else: not ours to route to
    if profile is not None and profile.box != box:
        log.warning("box %r left out: its profile names another box (%r)", box, profile.box)
        return None
    return profile


def mark_stopped(connection: redis.Redis, profile: BoxProfile) -> None:
    """A worker that stops says so at once: front ends need not wait for its heartbeat to lapse."""
    with contextlib.suppress(redis.ConnectionError, redis.TimeoutError, FileNotFoundError):
        publish_profile(connection, profile, "stopped")
