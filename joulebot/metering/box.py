"""The measurement box: its meters, its idle power, and one answer's Energy."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TypeVar

from joulebot.metering.base import Meter
from joulebot.metering.reading import Energy, IdleBaseline, Reading

T = TypeVar("T")


class MeasurementBox:
    """Combines meters: the first machine-scope meter gives the machine figure."""

    def __init__(self, meters: list[Meter]) -> None:
        if not meters:
            raise ValueError("a measurement box needs at least one meter")
        machine = [m for m in meters if m.scope == "machine"]
        if not machine:
            raise ValueError("no machine-scope meter (add the estimate as the fallback)")
        self.machine_meter = machine[0]
        self.component_meters = [m for m in meters if m.scope != "machine"]
        self.idle: IdleBaseline | None = None

    def measure_idle(self, seconds: float) -> IdleBaseline:
        """Measure machine power with no job running, with the machine meter itself."""
        window = self.machine_meter.start()
        time.sleep(seconds)
        reading = window.stop()
        if reading.joules is None:
            raise RuntimeError(f"idle baseline failed: {reading.error}")
        self.idle = IdleBaseline(
            watts=reading.joules / reading.seconds,
            seconds=reading.seconds,
            source=reading.source,
            measured=reading.measured,
            measured_at=datetime.now(UTC),
        )
        return self.idle

    def measure(self, work: Callable[[], T]) -> tuple[T, Energy]:
        """Run `work` inside one window of every meter; exceptions propagate, no Energy."""
        windows = [m.start() for m in self.component_meters]
        machine_window = self.machine_meter.start()
        value = work()
        machine = machine_window.stop()
        components = [w.stop() for w in windows]
        return value, self.energy(machine, components)

    def energy(self, machine: Reading, components: list[Reading]) -> Energy:
        total = machine.joules
        attributable = None
        if total is not None and self.idle is not None:
            attributable = max(0.0, total - self.idle.watts * machine.seconds)
        return Energy(
            total_j=total,
            attributable_j=attributable,
            seconds=machine.seconds,
            idle=self.idle,
            machine=machine,
            components=components,
        )
