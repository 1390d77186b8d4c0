"""Windows over energy counters (RAPL, NVML): read at start and stop, nothing in between."""

from __future__ import annotations

import time
from collections.abc import Callable

from joulebot.metering.base import MeterAbsent, Window
from joulebot.metering.reading import Reading, Scope


class CounterWindow(Window):
    """`read()` returns one counter value (in joules) per domain; `wraps[i]` is where
    domain i wraps around (None: never). A counter seen going backwards wrapped once:
    windows must stay shorter than one wrap period (RAPL: hours at server powers)."""

    def __init__(
        self, read: Callable[[], list[float]], wraps: list[float | None], source: str, scope: Scope, method: str
    ) -> None:
        self.read, self.wraps = read, wraps
        self.source, self.scope, self.method = source, scope, method
        self.t0 = time.perf_counter()
        self.error: str | None = None
        try:
            self.start_values = read()
        except (OSError, MeterAbsent) as exc:
            self.start_values, self.error = [], str(exc)

    def stop(self) -> Reading:
        seconds = time.perf_counter() - self.t0
        end_values: list[float] = []
        if self.error is None:
            try:
                end_values = self.read()
            except (OSError, MeterAbsent) as exc:
                self.error = str(exc)
        if self.error is not None:
            return Reading(
                source=self.source, scope=self.scope, measured=True, joules=None, seconds=seconds, error=self.error
            )
        joules = 0.0
        for start, end, wrap in zip(self.start_values, end_values, self.wraps, strict=True):
            delta = end - start
            if delta < 0 and wrap:
                delta += wrap
            joules += delta
        return Reading(
            source=self.source, scope=self.scope, measured=True, joules=joules, seconds=seconds, samples=2,
            method=self.method,
        )  # fmt: skip
