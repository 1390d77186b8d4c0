"""Plain-data Results for formatting and storage tests (built from the real models)."""

from __future__ import annotations

import math
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
    uncertainty_j: float | None = None,  # None: ±100 % for an estimate, ±1 % for a measurement
    update_s: float | None = None,
    idle_uncertainty_w: float = 0.5,
    box: str = "testbox",
    scope: str = "machine",
    generation_settings: str = "",
) -> Result:
    machine = Reading(
        source=source,
        scope=scope,
        measured=measured,
        joules=total_j,
        seconds=seconds,
        samples=2,
        method="" if measured else "5 W idle + 10 W per busy core",
        error=None if total_j is not None else "serial port vanished",
        uncertainty_j=None if total_j is None else uncertainty_j or total_j * (0.01 if measured else 1.0),
        update_s=update_s,
    )
    idle = None
    if idle_w is not None:
        idle = IdleBaseline(
            watts=idle_w,
            seconds=2.0,
            source=source,
            measured=measured,
            measured_at=NOW,
            uncertainty_w=idle_uncertainty_w,
        )
    attributable = attributable_u = None
    if total_j is not None and idle is not None:
        attributable = max(0.0, total_j - idle.watts * seconds)
        attributable_u = math.hypot(machine.uncertainty_j or 0.0, idle.uncertainty_w * seconds)
    energy = Energy(
        total_j=total_j,
        attributable_j=attributable,
        seconds=seconds,
        idle=idle,
        machine=machine,
        uncertainty_j=machine.uncertainty_j,
        attributable_uncertainty_j=attributable_u,
    )
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
        box=box,
        started_at=NOW,
        finished_at=NOW + timedelta(seconds=seconds),
        generation_settings=generation_settings,
    )
