"""The idle baseline off the answer's path: kept in Redis per box and meter, re-measured when idle.

Measuring idle power takes `IDLE_BASELINE_S` of a quiet box. Doing it at every worker start
put those seconds in front of the first answer (a cold `joulebot ask` waited for it). Instead:

- every baseline the box measures is kept in Redis under its box and meter
  (`keys.idle_baseline_key`), with what measured it (`MeasurementBox.identity`: the meter,
  its port and channel, the estimate's model);
- a starting worker adopts the kept ones that the same box's same meters measured and that
  are younger than `IDLE_REFRESH_S` — never one from another box or another meter;
- while the worker waits for jobs, a thread re-measures before the baseline goes stale
  (at `REFRESH_AT` of its allowed age) or as soon as there is none, once the box has had no
  job for `SETTLE_S`. A job that arrives meanwhile stops that measurement at once and runs
  (nothing of the cut measurement is kept; the thread tries again once the box is quiet), so
  no measurement ever overlaps an answer and no answer waits seconds for one.

An answer on a box that has never been measured (a fresh home) has no baseline: its footer
gives the total only, never a guessed "above idle". A baseline older than `IDLE_REFRESH_S`
(a box too busy to be idle) is still re-measured before the job, as before.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from datetime import UTC, datetime

import redis

from joulebot.keys import idle_baseline_key
from joulebot.metering.answer_energy import IdleInterrupted
from joulebot.metering.reading import IdleBaseline
from joulebot.worker.heartbeat import REDIS_ERRORS
from joulebot.worker.station import Station

log = logging.getLogger(__name__)

REFRESH_AT = 0.75  # re-measure in the background once the baseline is this share of IDLE_REFRESH_S old
SETTLE_S = 1.0  # and only when the last job ended at least this long ago
POLL_S = 0.25


class IdleKeeper(threading.Thread):
    """Restores, keeps and refreshes the station's idle baselines (see the module's docstring)."""

    def __init__(self, connection: redis.Redis, station: Station) -> None:
        super().__init__(name="joulebot-idle", daemon=True)
        self.connection, self.station = connection, station
        self.box_name = station.settings.box_name
        self.max_age_s = station.settings.idle_refresh_s
        self.stopped = threading.Event()

    # --- kept baselines ---------------------------------------------------------------------
    def restore(self) -> list[IdleBaseline]:
        """Adopt the kept baselines of this box's own meters that are not stale; returns them."""
        box = self.station.box
        sources = box.sources()
        try:
            values = self.connection.mget([idle_baseline_key(self.box_name, s) for s in sources])
        except REDIS_ERRORS:
            return []
        found = []
        now = datetime.now(UTC)
        for source, raw in zip(sources, values, strict=True):
            kept = _parse(raw)
            if kept is None or kept.get("box") != self.box_name or kept.get("meter") != box.identity(source):
                continue
            baseline = IdleBaseline.model_validate(kept["baseline"])
            if baseline.source == source and (now - baseline.measured_at).total_seconds() <= self.max_age_s:
                found.append(baseline)
        if found:
            box.adopt(found)
        return found

    def save(self) -> None:
        """Keep the box's current baselines (each under its box and meter) for the next start."""
        box = self.station.box
        try:
            with self.connection.pipeline() as pipe:
                for source, baseline in box.idle_by_source.items():
                    kept = {"box": self.box_name, "meter": box.identity(source), "baseline": baseline.model_dump()}
                    key = idle_baseline_key(self.box_name, source)
                    pipe.set(key, json.dumps(kept, default=str), ex=max(1, int(self.max_age_s)))
                pipe.execute()
        except REDIS_ERRORS:
            log.warning("could not keep the idle baseline in Redis; it is measured again at the next start")

    # --- background refresh -----------------------------------------------------------------
    def due(self) -> bool:
        age = self.station.box.idle_age_s()
        return age is None or age > self.max_age_s * REFRESH_AT

    def refresh_if_quiet(self) -> bool:
        """Measure idle now if it is due and the box is quiet; False if it was not the moment."""
        station = self.station
        if not self.due() or time.monotonic() - station.last_job_end < SETTLE_S:
            return False
        if not station.busy.acquire(blocking=False):  # a job is running
            return False
        try:
            if not self.due():  # measured meanwhile (after a cool-down, by a job)
                return False
            station.measure_idle(give_way=True)
            return True
        except IdleInterrupted:
            log.info("the background idle measurement gave way to a job")
            return False
        finally:
            station.busy.release()

    def run(self) -> None:
        while not self.stopped.wait(POLL_S):
            try:
                self.refresh_if_quiet()
            except Exception as exc:  # a meter hiccup must not kill the thread; the next poll retries
                log.warning("background idle measurement failed: %s", exc)
                self.stopped.wait(self.station.settings.idle_baseline_s)

    def stop(self) -> None:
        self.stopped.set()


def _parse(raw: bytes | str | None) -> dict | None:
    if raw is None:
        return None
    try:
        kept = json.loads(raw)
    except ValueError:
        return None
    return kept if isinstance(kept, dict) and isinstance(kept.get("baseline"), dict) else None
