"""Power sampled on a thread and integrated over a window (for meters without a counter)."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable

from joulebot.metering.base import Window
from joulebot.metering.reading import Reading, Scope


class MeterUnavailable(RuntimeError):
    """The meter could not give a sample even after retries; `str()` is the reason."""


def integrate(samples: list[tuple[float, float]], start: float, stop: float) -> float:
    """Trapezoids through (time, watts) samples, held constant out to the window's edges."""
    inside = [s for s in samples if start < s[0] < stop]
    points = [(start, samples[0][1]), *inside, (stop, samples[-1][1])]
    return sum((t1 - t0) * (p0 + p1) / 2 for (t0, p0), (t1, p1) in itertools.pairwise(points))


class SampledWindow(Window):
    """Calls `sample()` every `interval_s` on its own thread from start to stop.

    A sample is stamped at the middle of the call. The first failed sample ends
    sampling; the window's Reading is then unavailable, with the reason.
    """

    def __init__(self, sample: Callable[[], float], interval_s: float, source: str, scope: Scope) -> None:
        self.sample = sample
        self.interval_s = interval_s
        self.source, self.scope = source, scope
        self.samples: list[tuple[float, float]] = []
        self.error: str | None = None
        self.thread_cpu_s = 0.0  # CPU time the sampling thread used (for overhead benchmarks)
        self._stop = threading.Event()
        self.start = time.perf_counter()
        self._thread = threading.Thread(target=self._run, name=f"{source}-sampler", daemon=True)
        self._thread.start()

    def _take(self) -> bool:
        t0 = time.perf_counter()
        try:
            watts = self.sample()
        except MeterUnavailable as exc:
            self.error = str(exc)
            return False
        self.samples.append(((t0 + time.perf_counter()) / 2, watts))
        return True

    def _run(self) -> None:
        cpu0 = time.thread_time()
        next_at = self.start
        while self._take():
            next_at += self.interval_s
            if self._stop.wait(max(0.0, next_at - time.perf_counter())):
                break
        self.thread_cpu_s = time.thread_time() - cpu0

    def stop(self) -> Reading:
        end = time.perf_counter()
        self._stop.set()
        self._thread.join()
        if self.error is None:
            self._take()  # one more at the end, so the last stretch is not extrapolated
        seconds = end - self.start
        if self.error is not None or not self.samples:
            return Reading(
                source=self.source, scope=self.scope, measured=True, joules=None, seconds=seconds,
                samples=len(self.samples), error=self.error or "no sample",
            )  # fmt: skip
        return Reading(
            source=self.source, scope=self.scope, measured=True, joules=integrate(self.samples, self.start, end),
            seconds=seconds, samples=len(self.samples), method=f"power sampled every {self.interval_s * 1000:g} ms",
            trace=[(round(t - self.start, 4), round(w, 3)) for t, w in self.samples],
        )  # fmt: skip
