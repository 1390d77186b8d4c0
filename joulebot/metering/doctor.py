"""What an operator runs on a measurement box: which meters, what they read, idle, temperatures."""

from __future__ import annotations

import time
from collections.abc import Callable

from joulebot.config import Settings
from joulebot.metering.answer_energy import MeasurementBox
from joulebot.metering.base import Meter, MeterAbsent
from joulebot.metering.detect import HARDWARE, build_hardware_meter, detect_meters, estimate_meter
from joulebot.metering.nvml import NvmlMeter
from joulebot.metering.reading import Reading

SOURCES = (*HARDWARE, "estimate")


def report(settings: Settings) -> str:
    detection = detect_meters(settings)
    box = MeasurementBox(detection.meters, settings.sysfs_root, detection.refused)
    box.measure_idle(settings.idle_baseline_s, settings.idle_settle_s)
    lines = ["meters found:"]
    for meter in box.meters:
        idle = box.idle_by_source.get(meter.source)
        reading = (
            f"{idle.watts:.2f} ± {idle.uncertainty_w:.2f} W over {idle.seconds:.1f} s idle" if idle else "no reading"
        )
        lines.append(f"  {meter.describe()}: {reading}")
    if detection.absent:
        lines.append("not used:")
        lines += [f"  {name}: {why}" for name, why in detection.absent.items()]
    idle = box.idle
    if box.wall is not None:
        figure = f"the wall meter ({box.wall.source})"
    elif box.components:
        figure = "the sum of " + " + ".join(m.source for m in box.components) + " (not the whole machine)"
    else:
        figure = "the estimate (no meter found)"
    lines.append(f"machine figure: {figure}")
    if idle is not None:
        lines.append(f"idle power: {idle.watts:.2f} ± {idle.uncertainty_w:.2f} W ({idle.source}, {idle.seconds:.1f} s)")
    composite = "+".join(m.source for m in box.components)
    if box.wall is not None and composite in box.idle_by_source:
        backup = box.idle_by_source[composite]
        lines.append(f"idle power of the backup figure ({composite}, not the whole machine): {backup.watts:.2f} W")
    temperatures = box.temperatures()
    if temperatures:
        lines.append("temperatures: " + ", ".join(f"{k} {v:.1f} °C" for k, v in temperatures.items()))
    else:
        lines.append("temperatures: no sensor found (hwmon, NVML)")
    if settings.cooldown_above_c is None:
        lines.append("cool-down: off (set COOLDOWN_ABOVE_C to the box's base temperature plus a margin)")
    else:
        lines.append(f"cool-down: jobs wait while any sensor is above {settings.cooldown_above_c:g} °C")
    return "\n".join(lines)


def build_meter(settings: Settings, source: str) -> Meter:
    """One meter by name, or MeterAbsent saying why it cannot be used here."""
    if source == "estimate":
        return estimate_meter(settings)
    if source not in HARDWARE:
        raise MeterAbsent(f"unknown meter {source!r} (known: {', '.join(SOURCES)})")
    return build_hardware_meter(source, settings)


def read_for(
    meter: Meter, seconds: float, tick: Callable[[float], None] = lambda _: None
) -> tuple[Reading, Reading | None]:
    """One window of `seconds` on one meter; `tick` gets the elapsed seconds about 10 times a second.

    Returns the reading, and for NVML GPUs with an energy counter, their instant power polled
    over the same window (to compare the two: what a check on a real GPU needs)."""
    window = meter.start(compare=True) if isinstance(meter, NvmlMeter) else meter.start()
    start = time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        tick(elapsed)
        time.sleep(min(0.1, seconds - elapsed))
    reading = window.stop()
    return reading, getattr(window, "comparison_reading", None)
