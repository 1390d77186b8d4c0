"""Which meters this machine has: `METERS=auto`, or an explicit list."""

from __future__ import annotations

from joulebot.config import Settings
from joulebot.metering.base import Meter
from joulebot.metering.estimate import EstimateMeter

KNOWN = ("estimate",)


class MeterConfigError(ValueError):
    pass


def select_meters(settings: Settings) -> list[Meter]:
    """The meters to use, machine-scope first. Falls back to the estimate under `auto`."""
    wanted = [name.strip().lower() for name in settings.meters.split(",") if name.strip()]
    unknown = [name for name in wanted if name not in (*KNOWN, "auto")]
    if unknown:
        raise MeterConfigError(f"unknown meter(s) in METERS: {', '.join(unknown)} (known: auto, {', '.join(KNOWN)})")
    # No hardware meter is implemented yet: every choice ends in the labelled estimate.
    return [EstimateMeter(settings.estimate_idle_w, settings.estimate_w_per_core)]
