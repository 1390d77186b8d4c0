"""Power sampled on a thread and integrated over a window (for meters without a counter).

How samples become joules depends on what the sampled value *is*, so the
window takes an integrator:
- `InstantPower`: the value is the power at the moment it was read (NVML's
  instant field): trapezoids through the samples;
- `BlockAverages`: the value is the mean power of the meter's last completed
  averaging interval (the MCP39F511N's active-power register): each value is
  put back on the interval it averages before integrating.
Each integrator also says how far off its figure can be (± J at about 95 %).
"""

from __future__ import annotations

import bisect
import itertools
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from joulebot.metering.base import Window
from joulebot.metering.phases import CannotSplit, PhaseEnergy
from joulebot.metering.reading import Reading, Scope
from joulebot.metering.sample_feed import SampleFeed

Sample = tuple[float, float]  # (time.perf_counter() at the middle of the read, watts)


class MeterUnavailable(RuntimeError):
    """The meter could not give a sample even after retries; `str()` is the reason."""


class MeterSetupRefused(MeterUnavailable):
    """The meter answers, but its setup (range, averaging interval) cannot be read, set or trusted."""


@dataclass(frozen=True)
class Account:
    joules: float
    uncertainty_j: float  # ± J, about 95 %, from timing and averaging (the accuracy class is added by the caller)
    blind_s: float = 0.0  # how much of the window the meter was not read often enough to see


class Integrator(Protocol):
    tail_s: float  # how long to keep sampling after the window's end before the account can be made

    def account(self, samples: list[Sample], start: float, stop: float) -> Account: ...

    def trace(self, samples: list[Sample], start: float, stop: float) -> list[tuple[float, float]]:
        """(seconds since `start`, watts) over [start, stop], each power at the time it describes."""
        ...


def shifted(samples: list[Sample], start: float, stop: float, lag_s: float) -> list[tuple[float, float]]:
    """Samples of power as a trace: each value put `lag_s` before it was read (what it describes)."""
    moved = [(t - start - lag_s, w) for t, w in samples]
    return [(round(t, 4), round(w, 3)) for t, w in moved if 0 <= t <= stop - start]


def interpolated(samples: list[Sample], t: float) -> float:
    """The sampled value at `t`: linear between the samples around it, held beyond the first and last."""
    i = bisect.bisect_left(samples, (t, -math.inf))
    if i == 0:
        return samples[0][1]
    if i == len(samples):
        return samples[-1][1]
    (t0, p0), (t1, p1) = samples[i - 1], samples[i]
    return p1 if t1 <= t0 else p0 + (p1 - p0) * (t - t0) / (t1 - t0)


def integrate(samples: list[Sample], start: float, stop: float) -> float:
    """Trapezoids through (time, watts) samples, held constant out to the window's edges."""
    inside = [s for s in samples if start < s[0] < stop]
    points = [(start, samples[0][1]), *inside, (stop, samples[-1][1])]
    return sum((t1 - t0) * (p0 + p1) / 2 for (t0, p0), (t1, p1) in itertools.pairwise(points))


class InstantPower:
    """Samples of instantaneous power: trapezoids. A change between two samples is placed
    anywhere in the gap, so each gap contributes up to gap/2 × |ΔP| (combined in quadrature)."""

    tail_s = 0.0

    def account(self, samples: list[Sample], start: float, stop: float) -> Account:
        """Edges inside the samples' span (a split point) take the value interpolated there."""
        inside = [s for s in samples if start < s[0] < stop]
        points = [(start, interpolated(samples, start)), *inside, (stop, interpolated(samples, stop))]
        pairs = list(itertools.pairwise(points))
        joules = sum((t1 - t0) * (p0 + p1) / 2 for (t0, p0), (t1, p1) in pairs)
        bounds = [(t1 - t0) / 2 * abs(p1 - p0) for (t0, p0), (t1, p1) in pairs]
        return Account(joules, math.sqrt(sum(b * b for b in bounds)))

    def trace(self, samples: list[Sample], start: float, stop: float) -> list[tuple[float, float]]:
        return shifted(samples, start, stop, 0.0)


class BlockAverages:
    """Samples of a register that holds the mean power of the last *completed* interval of
    `period_s` (back-to-back intervals, phase unknown).

    The register R(t) is a step function that changes at interval ends, so the power over
    [τ, τ + period) is what R shows one period later: P(τ) = R(τ + period) for whole
    intervals. The window's energy is therefore ∫ R over [start + period, stop + period],
    which needs samples until one period after the window's end (`tail_s`).

    R's steps are placed half-way between the two reads that differ (± half the gap; these
    errors are independent and add in quadrature).

    The intervals cut by the window's edges are where averaging hides what happened: only
    their mean m is known. Where the cut interval's bounds can be seen (its value appeared
    and was replaced one period later), the part *outside* the window is taken at the
    neighbouring interval's mean (the load before the answer, the load after it) and the
    rest of m × period is the window's: exact when the load changes at the window's edge,
    the real case of an answer on an otherwise idle box. Else the interval is taken as
    uniform. Either way each edge may be off by up to period × the spread of the means
    around it; both edges can err the same way, so they add linearly.
    """

    def __init__(self, period_s: float) -> None:
        self.period_s = period_s
        self.tail_s = 2 * period_s  # the edge bound looks at the interval after the last one

    def trace(self, samples: list[Sample], start: float, stop: float) -> list[tuple[float, float]]:
        return shifted(samples, start, stop, self.period_s)  # a value read at t: the interval before t

    def account(self, samples: list[Sample], start: float, stop: float) -> Account:
        times = [t for t, _ in samples]
        changes = [
            ((t0 + t1) / 2, (t1 - t0) / 2, p1 - p0) for (t0, p0), (t1, p1) in itertools.pairwise(samples) if p1 != p0
        ]
        change_times = [t for t, _, _ in changes]

        def value_at(t: float) -> float:
            """R(t) with its steps half-way between reads: the value of the nearest read."""
            i = bisect.bisect_left(times, t)
            if i == 0 or (i < len(times) and times[i] - t < t - times[i - 1]):
                return samples[min(i, len(samples) - 1)][1]
            return samples[i - 1][1]

        period = self.period_s
        a, b = start + period, stop + period
        cuts = [a, *(t for t in change_times if a < t < b), b]
        joules = sum((t1 - t0) * value_at((t0 + t1) / 2) for t0, t1 in itertools.pairwise(cuts))

        def cut_interval(edge: float) -> tuple[float, float, float, float] | None:
            """(begin, end, mean before, mean after) of the interval cut by `edge`, when its bounds were seen."""
            i = bisect.bisect_right(change_times, edge + period) - 1
            if i < 0 or i + 1 >= len(changes):
                return None
            (c1, h1, _), (c2, h2, _) = changes[i], changes[i + 1]
            if max(h1, h2) > period / 4:
                return None  # a bound not seen closely enough (the sampler was held up): keep it uniform
            if abs(c2 - c1 - period) > period / 4 + h1 + h2:
                return None  # several intervals of the same mean: the cut one cannot be told apart
            begin, end = c1 - period, c2 - period
            if not begin <= edge <= end:
                return None
            return begin, end, value_at(c1 - h1 / 2), value_at(c2 + h2 / 2)

        for edge, inside_after in ((start, True), (stop, False)):
            found = cut_interval(edge)
            if found is None:
                continue
            begin, end, before, after = found
            mean = value_at(edge + period)
            # uniform: mean over the inside part; instead, the outside part at its neighbour's mean
            joules += (mean - before) * (edge - begin) if inside_after else (mean - after) * (end - edge)

        # each seen step: ± half its gap. A gap longer than an interval (the sampler was held up)
        # hides whole intervals whose means are unknown: that stretch counts ± its length × the
        # highest mean seen around it (the load could have been anything from nothing to that twice)
        timing = math.sqrt(sum((half * step) ** 2 for t, half, step in changes if a < t < b and 2 * half <= period))
        blind_s = 0.0
        # the window opened at `start` and ends being seen at b: reads missing there are gaps too
        edges_read = [(min(start, times[0]), samples[0][1]), *samples, (max(b, times[-1]), samples[-1][1])]
        for (t0, _), (t1, _) in itertools.pairwise(edges_read):
            blind = min(t1, b) - max(t0, a)
            if t1 - t0 > period and blind > 0:
                blind_s += blind
                timing += blind * max(p for t, p in edges_read if t0 - period <= t <= t1 + period)
        edges = 0.0
        for edge in (start, stop):
            # R at edge: the interval before the cut one; at edge + period: the cut one; then the one after
            around = [value_at(edge), *(p for t, p in samples if edge <= t <= edge + 2 * period)]
            around.append(value_at(edge + 2 * period))
            edges += period * (max(around) - min(around))
        return Account(joules, edges + timing, blind_s)


class SampledWindow(Window):
    """Calls `sample()` every `interval_s` on its own thread (or the meter's shared `feed`) from
    start to stop (and on for the integrator's tail). A sample is stamped at the middle of the call. The first failed
    sample ends sampling; the window's Reading is then unavailable, with the reason.

    `accuracy` is the meter's accuracy class (a fraction of the reading); `lsb_w` its
    resolution in watts; `method` says how the figure was obtained.
    """

    def __init__(
        self,
        sample: Callable[[], float],
        interval_s: float,
        source: str,
        scope: Scope,
        integrator: Integrator,
        *,
        accuracy: float,
        lsb_w: float = 0.0,
        update_s: float | None = None,
        method: str = "",
        measured: bool = True,
        feed: SampleFeed | None = None,
    ) -> None:
        self.sample = sample
        self.measured = measured
        self.interval_s = interval_s
        self.source, self.scope = source, scope
        self.integrator = integrator
        self.accuracy, self.lsb_w, self.update_s = accuracy, lsb_w, update_s
        self.method = method or f"power sampled every {interval_s * 1000:g} ms"
        self.samples: list[Sample] = []
        self.error: str | None = None
        self.thread_cpu_s = 0.0  # CPU time the sampling thread used (for overhead benchmarks)
        self._stop = threading.Event()
        self.start = time.perf_counter()
        self.end: float | None = None
        self.feed = feed
        if feed is not None:
            if self._take():  # the read at the start, which a thread of its own takes first
                feed.open(self)
            return
        self._thread = threading.Thread(target=self._run, name=f"{source}-sampler", daemon=True)
        self._thread.start()

    def fed(self, stamped_at: float, value: float | None, error: str | None, cpu_s: float) -> bool:
        """A read of the shared `feed`; False once a read failed (the window's sampling ends there)."""
        self.thread_cpu_s += cpu_s
        if error is not None:
            self.error = error
            return False
        if value is not None and stamped_at > self.samples[-1][0]:  # a read begun before this window's own
            self.samples.append((stamped_at, value))
        return True

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
        end = self.end = time.perf_counter()
        if self.integrator.tail_s > 0 and self.error is None:
            # what the meter shows now still averages the past: wait for the window's end to come out
            time.sleep(max(0.0, end + self.integrator.tail_s + self.interval_s - time.perf_counter()))
        if self.feed is not None:
            self.feed.close(self)
        else:
            self._stop.set()
            self._thread.join()
        if self.error is None:
            self._take()  # one more at the end, so the last stretch is not extrapolated
        seconds = end - self.start
        if self.error is not None or not self.samples:
            error = self.error or "no sample"
            return Reading.failed(self.source, self.scope, seconds, error, len(self.samples), self.update_s)
        account = self.integrator.account(self.samples, self.start, end)
        if account.blind_s > seconds / 2:
            error = f"read too rarely: the sampler was held up for {account.blind_s:.2f} s of {seconds:.2f} s"
            return Reading.failed(self.source, self.scope, seconds, error, len(self.samples), self.update_s)
        resolution = self.lsb_w * seconds
        uncertainty = self.accuracy * abs(account.joules) + math.hypot(account.uncertainty_j, resolution)
        return Reading(
            source=self.source,
            scope=self.scope,
            measured=self.measured,
            joules=account.joules,
            seconds=seconds,
            samples=len(self.samples),
            method=self.method,
            uncertainty_j=uncertainty,
            update_s=self.update_s,
            trace=self.integrator.trace(self.samples, self.start, end),
        )

    def split(self, at_s: float, band_s: float) -> PhaseEnergy:
        """The window's energy before and after `at_s` (seconds after its start), each with its
        band: the integrator's attribution at that point, as at the window's edges, plus ± `band_s`
        of where the point lies × the highest power seen around it (moved from one side to the other)."""
        if self.end is None or self.error is not None or not self.samples:
            raise CannotSplit(f"{self.source} has no samples of this window")
        seconds = self.end - self.start
        update = max(self.update_s or 0.0, self.interval_s)
        if seconds < 2 * update:
            raise CannotSplit(
                f"too short to split: {seconds * 1000:.0f} ms is under two of {self.source}'s"
                f" {update * 1000:g} ms updates"
            )
        at = self.start + min(max(at_s, 0.0), seconds)
        trace = self.integrator.trace(self.samples, self.start, self.end)
        near = [w for t, w in trace if abs(t - at_s) <= band_s + update]
        moved = band_s * max(near or [w for _, w in trace] or [0.0])
        figures = []
        for t0, t1 in ((self.start, at), (at, self.end)):
            part = self.integrator.account(self.samples, t0, t1)
            spread = self.accuracy * abs(part.joules) + math.hypot(part.uncertainty_j, self.lsb_w * (t1 - t0))
            figures += [part.joules, spread + moved]
        return PhaseEnergy(*figures)

    def old_style_joules(self) -> float:
        """The energy as the driver computed it before it knew about averaging: samples stamped at
        read time, trapezoids over the window only (kept for `bench/meter_accuracy.py`)."""
        assert self.end is not None
        return integrate([s for s in self.samples if s[0] <= self.end], self.start, self.end)
