"""`joulebot meters` (what this box can measure) and `joulebot meter read|simulate` (one meter)."""

from __future__ import annotations

from joulebot.cli.console import err, fail, say, ticking
from joulebot.config import get_settings


def meters() -> None:
    """The operator report, after a spinner with the seconds gone while the idle power is measured (on a
    terminal; piped, stderr stays empty)."""
    from joulebot.metering.detect import MeterConfigError
    from joulebot.metering.doctor import report

    settings = get_settings()
    total = settings.idle_settle_s + settings.idle_baseline_s
    try:
        label = "measuring idle power"
        with err.status(label) as status, ticking(lambda t: status.update(f"{label}: {min(t, total):.1f}/{total:g} s")):
            text = report(settings)
    except MeterConfigError as exc:
        raise fail(str(exc), 2) from None
    say(text)


def meter_read(source: str, seconds: float, port: str | None, interval: float | None) -> None:
    """One meter read for `seconds`: its average power and energy, how it was made, and the polled
    power of the same window beside an energy counter's figure."""
    from joulebot.metering.base import MeterAbsent
    from joulebot.metering.doctor import build_meter, read_for

    settings = get_settings()
    overrides: dict[str, object] = {"mcp39f511n_port": port} if port else {}
    if interval:
        overrides["meter_interval_s"] = interval
    try:
        meter = build_meter(settings.model_copy(update=overrides), source.lower())
    except MeterAbsent as exc:
        raise fail(str(exc), 2) from None
    with err.status("reading") as status:
        label = meter.describe()
        reading, polled = read_for(meter, seconds, lambda t: status.update(f"reading {label}: {t:.1f}/{seconds:g} s"))
    if reading.joules is None:
        raise fail(f"no reading: {reading.error}")
    kind = "measured" if reading.measured else "estimated"
    band = f" ± {reading.uncertainty_j:.3f} J" if reading.uncertainty_j is not None else ""
    say(
        f"{reading.source}: {reading.watts:.3f} W average, {reading.joules:.3f} J{band} over {reading.seconds:.3f} s"
        f" ({reading.samples} samples, {reading.scope}, {kind})"
    )
    if reading.method:
        say(f"  how: {reading.method}")
    if reading.note:
        say(f"  note: {reading.note}")
    if reading.short_window:
        update_ms = (reading.update_s or 0) * 1000
        say(f"  short window: under 10 of the meter's {update_ms:g} ms updates")
    if polled is not None and polled.joules is not None and reading.joules:
        off = (polled.joules - reading.joules) / reading.joules * 100
        say(
            f"  same window, {polled.method}: {polled.watts:.3f} W average, {polled.joules:.3f} J"
            f" ({off:+.1f} % against the energy counter; {polled.samples} samples)"
        )
    elif polled is not None:
        say(f"  instant power over the same window: no reading ({polled.error})")


def meter_simulate(watts: float, power_range: int, mains_hz: float) -> None:
    """The simulator on a pseudo-terminal until Ctrl-C."""
    import time

    from joulebot.metering.mcp39f511n_sim import SimulatedMCP39F511N

    with SimulatedMCP39F511N(power_w=watts, power_range=power_range, mains_hz=mains_hz) as sim:
        say(f"simulated MCP39F511N at {sim.port} ({watts:g} W); Ctrl-C to stop")
        try:
            while True:
                time.sleep(1)
        except KeyboardInterrupt:
            pass
