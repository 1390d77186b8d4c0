"""The measurement box: its meters, its idle power, and one answer's Energy.

The machine figure comes from the wall meter when there is one; else from the
sum of the component meters (CPU by RAPL, GPU by NVML), labelled as not the
whole machine; else from the estimate. If the chosen source fails during a
window, the next one in that order is used and the failure is said.
"""

from __future__ import annotations

import math
import statistics
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

from joulebot.metering.base import Meter, Window
from joulebot.metering.nvml import NvmlMeter
from joulebot.metering.phases import PhaseEnergy, PhaseTiming, phases
from joulebot.metering.reading import Energy, IdleBaseline, Reading
from joulebot.metering.temperature import hwmon_temperatures

T = TypeVar("T")


class IdleInterrupted(RuntimeError):
    """An idle measurement gave way (its `interrupt` was set): nothing was measured or kept."""


class MeasurementBox:
    def __init__(
        self, meters: list[Meter], sysfs_root: Path = Path("/sys"), refused: dict[str, str] | None = None
    ) -> None:
        self.sysfs_root = sysfs_root
        self.refused = dict(refused or {})  # meters that are there but not used, and why: said in every figure
        estimates = [m for m in meters if not m.measured]
        if not estimates:
            raise ValueError("a measurement box needs the estimate meter as its fallback")
        self.estimate = estimates[0]
        walls = [m for m in meters if m.measured and m.scope == "machine"]
        self.wall = walls[0] if walls else None
        self.components = [m for m in meters if m.measured and m.scope in ("cpu", "gpu")]
        self.meters = [m for m in (self.wall, *self.components, self.estimate) if m is not None]
        self.idle_by_source: dict[str, IdleBaseline] = {}

    def temperatures(self) -> dict[str, float]:
        """Every temperature the box can read: hwmon sensors, and GPUs through NVML."""
        found = hwmon_temperatures(self.sysfs_root)
        for meter in self.components:
            if isinstance(meter, NvmlMeter):
                found.update(meter.temperatures())
        return found

    def idle_age_s(self) -> float | None:
        idle = self.idle
        return None if idle is None else (datetime.now(UTC) - idle.measured_at).total_seconds()

    @property
    def idle(self) -> IdleBaseline | None:
        """The idle baseline of the preferred machine figure."""
        return next(iter(self.idle_by_source.values()), None)

    def _window(self, work: Callable[[], T]) -> tuple[T, list[Window], list[Reading]]:
        windows = [m.start() for m in self.meters]
        value = work()
        return value, windows, [w.stop() for w in reversed(windows)][::-1]

    def _composite(self, readings: list[Reading]) -> Reading | None:
        """The sum of the component meters (CPU + GPU), when every one of them gave a reading."""
        by_meter = dict(zip(self.meters, readings, strict=True))
        parts = [by_meter[m] for m in self.components]
        if not parts or any(p.joules is None for p in parts):
            return None
        updates = [p.update_s for p in parts if p.update_s is not None]
        return Reading(
            source="+".join(p.source for p in parts),
            scope="components",
            measured=True,
            joules=sum(p.joules for p in parts),  # type: ignore[misc]
            seconds=max(p.seconds for p in parts),
            samples=min(p.samples for p in parts),
            method="sum of " + " + ".join(f"{p.source} ({p.scope})" for p in parts),
            uncertainty_j=math.sqrt(sum((p.uncertainty_j or 0.0) ** 2 for p in parts)),  # independent meters
            update_s=max(updates) if updates else None,
            note="; ".join(p.note for p in parts if p.note),  # e.g. a GPU without an energy counter
        )

    def _machine(self, readings: list[Reading]) -> tuple[Reading, list[Reading]]:
        """The reading the machine figure comes from, in order of preference, and the rest."""
        by_meter = dict(zip(self.meters, readings, strict=True))
        failures = [f"{name} not used: {why}" for name, why in self.refused.items()]
        failures += [f"{r.source} failed: {r.error}" for r in readings if r.joules is None]
        candidates: list[Reading] = []
        if self.wall is not None:
            candidates.append(by_meter[self.wall])
        composite = self._composite(readings)
        if composite is not None:
            candidates.append(composite)
        candidates.append(by_meter[self.estimate])
        chosen = next(c for c in candidates if c.joules is not None or c is candidates[-1])
        if failures and chosen.error is None:
            chosen = chosen.model_copy(update={"note": "; ".join([*failures, *filter(None, [chosen.note])])})
        rest = [r for r in readings if r is not chosen and r.source != chosen.source]
        return chosen, rest

    def measure_idle(
        self, seconds: float, settle_s: float = 0.0, parts: int = 4, interrupt: threading.Event | None = None
    ) -> IdleBaseline:
        """Measure power with no job running, for every source of the machine figure at once
        (the wall meter, the CPU+GPU sum, each meter, the estimate).

        After `settle_s` of quiet (what ran before, e.g. a model load, dies down), `parts`
        consecutive windows: their mean is the idle power, their spread says how much idle
        power wanders between windows (the above-idle figure's uncertainty).

        Once `interrupt` is set the measurement stops at once (the open window is closed and
        thrown away) and raises IdleInterrupted; the baselines the box had stay as they were.
        """
        quiet = interrupt.wait if interrupt is not None else time.sleep

        def given_way() -> bool:
            return interrupt is not None and interrupt.is_set()

        if settle_s > 0:
            quiet(settle_s)
        powers: dict[str, list[tuple[float, float, float]]] = {}  # source -> (W, ±W, s) per part
        kinds: dict[str, bool] = {}
        for _ in range(max(1, parts)):
            _, _, readings = self._window(lambda: quiet(seconds / max(1, parts)))
            if given_way():  # that window was cut short: not idle power over its time
                raise IdleInterrupted("the idle measurement gave way")
            machine, _ = self._machine(readings)
            composite = self._composite(readings)
            seen: set[str] = set()
            for reading in [machine, *([composite] if composite else []), *readings]:
                if reading.joules is None or reading.seconds <= 0 or reading.source in seen:
                    continue
                seen.add(reading.source)
                part = powers.setdefault(reading.source, [])
                kinds[reading.source] = reading.measured
                u_w = (reading.uncertainty_j or 0.0) / reading.seconds
                part.append((reading.joules / reading.seconds, u_w, reading.seconds))
        now = datetime.now(UTC)
        idle: dict[str, IdleBaseline] = {}
        for source, part in powers.items():
            watts = [w for w, _, _ in part]
            spread = 2 * statistics.stdev(watts) if len(watts) > 1 else 0.0
            meter_u = statistics.fmean(u for _, u, _ in part)  # mostly the accuracy class: does not average out
            idle[source] = IdleBaseline(
                watts=statistics.fmean(watts),
                seconds=sum(s for _, _, s in part),
                source=source,
                measured=kinds[source],
                measured_at=now,
                uncertainty_w=math.hypot(spread, meter_u),
            )
        if not idle:
            raise RuntimeError("idle baseline failed: no meter gave a reading")
        self.idle_by_source = idle
        return next(iter(idle.values()))

    def identity(self, source: str) -> str | None:
        """What a baseline of `source` was measured by (meter, port, channel, estimate model), or None.

        A kept baseline is reused only where this is unchanged: never one from another meter.
        """
        parts = [m for m in self.meters if m.source == source]
        if not parts and "+" in source:
            parts = [m for m in self.components if m.source in source.split("+")]
        return "; ".join(m.describe() for m in parts) or None

    def sources(self) -> list[str]:
        """Every source a machine figure or its baseline can come from, the preferred first."""
        composite = ["+".join(m.source for m in self.components)] if self.components else []
        wall = [self.wall.source] if self.wall else []
        return [*wall, *composite, *(m.source for m in self.components), self.estimate.source]

    def adopt(self, baselines: list[IdleBaseline]) -> None:
        """Use baselines measured earlier (by this box's same meters, see `identity`), preferred first."""
        by_source = {b.source: b for b in baselines}
        self.idle_by_source = {s: by_source[s] for s in self.sources() if s in by_source}

    def measure(
        self, work: Callable[[], T], timing: Callable[[T], PhaseTiming | None] | None = None
    ) -> tuple[T, Energy]:
        """Run `work` inside one window of every meter; exceptions propagate, no Energy.

        `timing` reads the runner's phases from what `work` returned: the machine figure is then
        split at the first token (Energy.phases), by the windows it came from."""
        value, windows, readings = self._window(work)
        machine, rest = self._machine(readings)
        energy = self.energy(machine, rest)
        phase_timing = timing(value) if timing is not None else None
        if phase_timing is not None and machine.joules is not None:
            cut = self._cut(dict(zip(self.meters, windows, strict=True)), machine)
            energy.phases = phases(phase_timing, machine.seconds, cut)
        return value, energy

    def _cut(self, windows: dict[Meter, Window], machine: Reading) -> Callable[[float, float], PhaseEnergy]:
        """How to split the machine figure: by the one window it came from, or the sum of the components'."""
        if machine.scope != "components":
            return next(w for m, w in windows.items() if m.source == machine.source).split

        def summed(at_s: float, band_s: float) -> PhaseEnergy:
            parts = [windows[m].split(at_s, band_s) for m in self.components]  # independent meters
            return PhaseEnergy(
                sum(p.prefill_j for p in parts),
                math.hypot(*(p.prefill_uncertainty_j for p in parts)),
                sum(p.decode_j for p in parts),
                math.hypot(*(p.decode_uncertainty_j for p in parts)),
            )

        return summed

    def energy(self, machine: Reading, components: list[Reading]) -> Energy:
        idle = self.idle_by_source.get(machine.source)
        attributable = attributable_u = None
        if machine.joules is not None and idle is not None:
            attributable = max(0.0, machine.joules - idle.watts * machine.seconds)
            attributable_u = math.hypot(machine.uncertainty_j or 0.0, idle.uncertainty_w * machine.seconds)
        return Energy(
            total_j=machine.joules,
            attributable_j=attributable,
            seconds=machine.seconds,
            idle=idle,
            machine=machine,
            components=components,
            uncertainty_j=machine.uncertainty_j if machine.joules is not None else None,
            attributable_uncertainty_j=attributable_u,
        )
