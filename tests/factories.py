"""Plain-data Results for formatting and storage tests (built from the real models)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from joulebot.carbon import Embodied, carbon_for, static_intensity
from joulebot.exchange import Request, Result
from joulebot.metering import Energy, IdleBaseline, Reading

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def make_result(
    *,
    total_j: float | None = 41.2,
    seconds: float = 6.1,
    idle_w: float | None = 4.74,
    measured: bool = False,
    source: str = "estimate",
    user_id: str = "alice",
    platform: str = "cli",
    prompt: str = "What is the capital of France?",
    answer: str = "Paris.",
    tokens: int = 48,
    model: str = "smollm2-135m",
    units: str = "joules",
) -> Result:
    machine = Reading(
        source=source,
        scope="machine",
        measured=measured,
        joules=total_j,
        seconds=seconds,
        samples=2,
        method="" if measured else "5 W idle + 10 W per busy core",
        error=None if total_j is not None else "serial port vanished",
    )
    idle = None
    if idle_w is not None:
        idle = IdleBaseline(watts=idle_w, seconds=2.0, source=source, measured=measured, measured_at=NOW)
    attributable = None if total_j is None or idle is None else max(0.0, total_j - idle_w * seconds)
    energy = Energy(total_j=total_j, attributable_j=attributable, seconds=seconds, idle=idle, machine=machine)
    carbon = carbon_for(total_j, seconds, static_intensity("DE"), Embodied(te_g=181_000, lifespan_years=4))
    request = Request(platform=platform, user_id=user_id, model=model, prompt=prompt, units=units, created_at=NOW)
    return Result(
        request=request,
        answer=answer,
        model=model,
        model_size="135M",
        prompt_tokens=12,
        completion_tokens=tokens,
        generation_s=seconds,
        load_s=0.2,
        energy=energy,
        carbon=carbon,
        box="testbox",
        started_at=NOW,
        finished_at=NOW + timedelta(seconds=seconds),
    )
