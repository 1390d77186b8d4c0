"""An energy estimate for machines without a meter, and labelled as one.

Model: machine power = idle W + W per busy core × busy cores, where busy core
seconds come from the kernel's machine-wide CPU time counters. It counts all
work on the machine (as a wall meter would), not only the worker's process.
The two constants are configuration, not knowledge: the label says so.
"""

from __future__ import annotations

import time

import psutil

from joulebot.metering.base import Meter, Window
from joulebot.metering.reading import Reading


def busy_cpu_seconds() -> float:
    """Machine-wide CPU seconds spent not idle, summed over all cores."""
    t = psutil.cpu_times()
    return t.user + t.nice + t.system + getattr(t, "irq", 0.0) + getattr(t, "softirq", 0.0) + getattr(t, "steal", 0.0)


class EstimateWindow(Window):
    def __init__(self, meter: EstimateMeter) -> None:
        self.meter = meter
        self.t0 = time.perf_counter()
        self.cpu0 = busy_cpu_seconds()

    def stop(self) -> Reading:
        seconds = time.perf_counter() - self.t0
        busy = max(0.0, busy_cpu_seconds() - self.cpu0)
        joules = self.meter.idle_w * seconds + self.meter.w_per_core * busy
        return Reading(
            source=self.meter.source,
            scope=self.meter.scope,
            measured=False,
            joules=joules,
            seconds=seconds,
            samples=2,
            method=self.meter.method,
        )


class EstimateMeter(Meter):
    source = "estimate"
    scope = "machine"
    measured = False

    def __init__(self, idle_w: float, w_per_core: float) -> None:
        if idle_w < 0 or w_per_core < 0:
            raise ValueError("estimate powers must be >= 0 W")
        self.idle_w = idle_w
        self.w_per_core = w_per_core

    @property
    def method(self) -> str:
        return f"{self.idle_w:g} W idle + {self.w_per_core:g} W per busy core"

    def describe(self) -> str:
        return f"estimate ({self.method}; not a measurement)"

    def start(self) -> EstimateWindow:
        return EstimateWindow(self)
