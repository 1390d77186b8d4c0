"""Temperatures for the cool-down gate: hwmon sensors in sysfs, plus the GPUs' own."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path


def hwmon_temperatures(sysfs_root: Path = Path("/sys")) -> dict[str, float]:
    """Every `temp*_input` under class/hwmon, in °C, keyed `chip/label`."""
    found: dict[str, float] = {}
    for chip in sorted((sysfs_root / "class" / "hwmon").glob("hwmon*")):
        name_file = chip / "name"
        chip_name = name_file.read_text().strip() if name_file.is_file() else chip.name
        for sensor in sorted(chip.glob("temp*_input")):
            label_file = chip / sensor.name.replace("_input", "_label")
            label = label_file.read_text().strip() if label_file.is_file() else sensor.name.removesuffix("_input")
            try:
                found[f"{chip_name}/{label}"] = int(sensor.read_text()) / 1000
            except (OSError, ValueError):
                continue  # some sensors answer EIO when idle or asleep
    return found


def wait_until_cool(
    read: Callable[[], dict[str, float]],
    threshold_c: float,
    sleep_s: float,
    max_wait_s: float,
    on_wait: Callable[[str], None] = lambda _: None,
    sleep: Callable[[float], None] = time.sleep,
) -> float:
    """Wait while the hottest sensor is above the threshold; returns seconds waited.

    Gives up after `max_wait_s` (a box that never cools would otherwise stop serving).
    """
    waited = 0.0
    while waited < max_wait_s:
        temperatures = read()
        if not temperatures:
            return waited
        sensor, hottest = max(temperatures.items(), key=lambda item: item[1])
        if hottest <= threshold_c:
            return waited
        on_wait(f"cooling down ({sensor} {hottest:.0f} °C > {threshold_c:.0f} °C)")
        pause = min(sleep_s, max_wait_s - waited)
        sleep(pause)
        waited += pause
    return waited
