"""Which meters this machine has: `METERS=auto`, or an explicit list that must all work.

The labelled estimate is always added last: it is the fallback when no meter is
found, and the backup when a meter fails in the middle of an answer.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from joulebot.config import Settings
from joulebot.metering.base import Meter, MeterAbsent, MeterRefused
from joulebot.metering.estimate import EstimateMeter
from joulebot.metering.power_figures import published
from joulebot.metering.sampling import MeterSetupRefused, MeterUnavailable

log = logging.getLogger(__name__)

HARDWARE = ("mcp39f511n", "rapl", "nvml")
DEFAULT_SERIAL_PORT = "/dev/ttyACM0"


class MeterConfigError(ValueError):
    pass


@dataclass
class Detection:
    meters: list[Meter]
    absent: dict[str, str] = field(default_factory=dict)  # meter name -> why it is not used
    refused: dict[str, str] = field(default_factory=dict)  # the part of `absent` that is there but unusable


def build_hardware_meter(name: str, settings: Settings) -> Meter:
    if name == "mcp39f511n":
        from joulebot.metering.mcp39f511n import McpMeter

        port = settings.mcp39f511n_port or DEFAULT_SERIAL_PORT
        if not settings.mcp39f511n_port and not Path(port).exists():
            raise MeterAbsent(f"no serial port: set MCP39F511N_PORT ({DEFAULT_SERIAL_PORT} does not exist)")
        try:
            n = settings.mcp39f511n_accumulation_n
            return McpMeter(
                port,
                settings.meter_interval_s,
                settings.mcp39f511n_channel,
                settings.meter_retries,
                accumulation_n=None if n == "keep" else n,
                mains_hz=settings.mains_hz,
            )
        except MeterSetupRefused as exc:
            raise MeterRefused(str(exc)) from None
        except MeterUnavailable as exc:
            raise MeterAbsent(str(exc)) from None
    if name == "rapl":
        from joulebot.metering.rapl import RaplMeter

        return RaplMeter(settings.sysfs_root)
    if name == "nvml":
        from joulebot.metering.nvml import NvmlMeter

        gpus = [int(i) for i in settings.nvml_gpus.split(",") if i.strip()] or None
        return NvmlMeter(gpus)
    raise AssertionError(name)


def estimate_meter(settings: Settings) -> EstimateMeter:
    """The labelled estimate: the constants set for this machine, else the published figures for its CPU."""
    if settings.estimate_idle_w is not None and settings.estimate_w_per_core is not None:
        return EstimateMeter.configured(settings.estimate_idle_w, settings.estimate_w_per_core)
    return EstimateMeter(published(settings.proc_root))


def detect_meters(settings: Settings) -> Detection:
    wanted = [name.strip().lower() for name in settings.meters.split(",") if name.strip()] or ["auto"]
    unknown = [n for n in wanted if n not in (*HARDWARE, "estimate", "auto")]
    if unknown:
        raise MeterConfigError(f"unknown meter {unknown[0]!r} in METERS (known: auto, {', '.join(HARDWARE)}, estimate)")
    automatic = wanted == ["auto"]
    names = list(HARDWARE) if automatic else [n for n in wanted if n != "estimate"]
    detection = Detection(meters=[])
    for name in names:
        try:
            detection.meters.append(build_hardware_meter(name, settings))
        except MeterRefused as exc:  # there, but its setup cannot be trusted: never fatal, always said
            detection.absent[name] = detection.refused[name] = str(exc)
            log.warning("meter %s not used: %s", name, exc)
        except MeterAbsent as exc:
            if not automatic:
                raise MeterConfigError(f"METERS asks for {name}, but: {exc}") from None
            detection.absent[name] = str(exc)
            log.info("meter %s not used: %s", name, exc)
    detection.meters.append(estimate_meter(settings))
    return detection
