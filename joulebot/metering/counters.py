"""Windows over energy counters (RAPL, NVML): read at start and stop, nothing in between.

A counter moves in steps (NVML's about every 100 ms): a read returns the energy up
to its last update, so a window counts from the update before its start to the
update before its end. Each edge can be off by up to one update period of power,
and the two edges can err the same way (idle before the window, busy at its end):
± one update period × the window's mean power, plus the meter's accuracy class.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from joulebot.metering.base import MeterAbsent, Window
from joulebot.metering.phases import CannotSplit, PhaseEnergy
from joulebot.metering.reading import Reading, Scope


class CounterWindow(Window):
    """`read()` returns one counter value (in joules) per domain; `wraps[i]` is where
    domain i wraps around (None: never). A counter seen going backwards wrapped once:
    windows must stay shorter than one wrap period (RAPL: hours at server powers)."""

    def __init__(
        self,
        read: Callable[[], list[float]],
        wraps: list[float | None],
        source: str,
        scope: Scope,
        method: str,
        *,
        accuracy: float,
        update_s: float,
    ) -> None:
        self.read, self.wraps = read, wraps
        self.source, self.scope, self.method = source, scope, method
        self.accuracy, self.update_s = accuracy, update_s
        self.t0 = time.perf_counter()
        self.error: str | None = None
        try:
            self.start_values = read()
        except (OSError, MeterAbsent) as exc:
            self.start_values, self.error = [], str(exc)

    def split(self, at_s: float, band_s: float) -> PhaseEnergy:
        raise CannotSplit(f"{self.source} reads only at the window's edges (a counter): nothing in between to split by")

    def stop(self) -> Reading:
        seconds = time.perf_counter() - self.t0
        end_values: list[float] = []
        if self.error is None:
            try:
                end_values = self.read()
            except (OSError, MeterAbsent) as exc:
                self.error = str(exc)
        if self.error is not None:
            return Reading.failed(self.source, self.scope, seconds, self.error, update_s=self.update_s)
        joules = 0.0
        for start, end, wrap in zip(self.start_values, end_values, self.wraps, strict=True):
            delta = end - start
            if delta < 0 and wrap:
                delta += wrap
            joules += delta
        mean_w = joules / seconds if seconds > 0 else 0.0
        uncertainty = self.accuracy * joules + min(seconds, self.update_s) * mean_w
        return Reading(
            source=self.source,
            scope=self.scope,
            measured=True,
            joules=joules,
            seconds=seconds,
            samples=2,
            method=self.method,
            uncertainty_j=uncertainty,
            update_s=self.update_s,
        )
