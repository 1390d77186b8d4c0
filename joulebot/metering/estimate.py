"""An energy estimate for machines without a meter, and labelled as one.

Power = the model's idle W + W per busy core × busy cores (`power_figures.PowerModel`: built
from published figures about this machine's CPU and memory, or constants someone configured).
Busy core seconds come from the kernel's machine-wide CPU time counters, read every
`interval_s` on a thread, so the estimate has a power trace like a sampled meter (drawn on the
answer's page, and split at the first token). It counts all work on the machine (as a wall
meter would), not only the worker's process. Every figure carries the model's band and its
label, and is never shown as a measurement.
"""

from __future__ import annotations

import itertools
import os

import psutil

from joulebot.metering.base import Meter
from joulebot.metering.power_figures import PowerModel, configured
from joulebot.metering.sample_feed import SampleFeed
from joulebot.metering.sampling import Account, MeterUnavailable, Sample, SampledWindow, interpolated

TICK_S = 1 / os.sysconf("SC_CLK_TCK")  # the CPU time counters' resolution


def busy_cpu_seconds() -> float:
    """Machine-wide CPU seconds spent not idle, summed over all cores."""
    t = psutil.cpu_times()
    return t.user + t.nice + t.system + getattr(t, "irq", 0.0) + getattr(t, "softirq", 0.0) + getattr(t, "steal", 0.0)


class BusyTime:
    """Samples of a cumulative busy-CPU counter made into the model's energy.

    Between two reads the counter's rise is placed evenly; at an edge inside the samples (a split
    point; the window's end) the rise of the gap around it could lie on either side: ± half of it
    (and one tick of the counter) at the model's W per busy core.
    """

    tail_s = 0.0

    def __init__(self, model: PowerModel) -> None:
        self.model = model

    def account(self, samples: list[Sample], start: float, stop: float) -> Account:
        busy = max(0.0, interpolated(samples, stop) - interpolated(samples, start))
        joules = self.model.joules(stop - start, busy)
        edges = 0.0
        for edge in (start, stop):
            gap = [(t0, b0, t1, b1) for (t0, b0), (t1, b1) in itertools.pairwise(samples) if t0 < edge < t1]
            if gap:
                _, b0, _, b1 = gap[0]
                edges += self.model.per_core_w * ((b1 - b0) / 2 + TICK_S)
        return Account(joules, self.model.band_j(stop - start, joules) + edges)

    def trace(self, samples: list[Sample], start: float, stop: float) -> list[tuple[float, float]]:
        """The model's power over each gap between reads, at the gap's middle."""
        points = []
        for (t0, b0), (t1, b1) in itertools.pairwise(samples):
            middle = (t0 + t1) / 2 - start
            if t1 > t0 and 0 <= middle <= stop - start:
                watts = self.model.idle_w + self.model.per_core_w * max(0.0, b1 - b0) / (t1 - t0)
                points.append((round(middle, 4), round(watts, 3)))
        return points


class EstimateMeter(Meter):
    source = "estimate"
    scope = "machine"
    measured = False

    def __init__(self, model: PowerModel, interval_s: float = 0.05) -> None:
        self.model = model
        self.interval_s = interval_s
        # one thread reads the counters for every window of this meter (one per answer), not one per window
        self.feed = SampleFeed(busy_cpu_seconds, interval_s, f"{self.source}-sampler", MeterUnavailable)

    @classmethod
    def configured(cls, idle_w: float, w_per_core: float) -> EstimateMeter:
        """An estimate from constants someone set for this machine (± 100 %)."""
        return cls(configured(idle_w, w_per_core))

    @property
    def method(self) -> str:
        return self.model.label

    def describe(self) -> str:
        return f"estimate ({self.method}; not a measurement)"

    def start(self) -> SampledWindow:
        return SampledWindow(
            busy_cpu_seconds,
            self.interval_s,
            self.source,
            self.scope,
            BusyTime(self.model),
            accuracy=0.0,
            method=self.method,
            measured=False,
            feed=self.feed,
        )
