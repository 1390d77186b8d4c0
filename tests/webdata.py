"""A history filled for the dashboard's tests: measured exchanges (the real wall-meter driver on a
simulated MCP39F511N, with their power traces) next to estimated ones and another box's."""

from __future__ import annotations

import contextlib
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta

import redis
from factories import NOW, make_result

from joulebot.carbon import Embodied, carbon_for, static_intensity
from joulebot.exchange import Result
from joulebot.history import HistoryStore
from joulebot.metering.answer_energy import MeasurementBox
from joulebot.metering.estimate import EstimateMeter
from joulebot.metering.mcp39f511n import McpMeter
from joulebot.metering.mcp39f511n_sim import SimulatedMCP39F511N, Steps
from joulebot.metering.phases import PhaseTiming
from joulebot.queueing.fleet import KEYS as FLEET_KEYS
from joulebot.queueing.fleet import BoxModel, BoxProfile, publish_profile

SECRET_PROMPT = "Tell me the secret 7f3c9a of the pancakes"
SECRET_ANSWER = "The secret answer is b41e07 and nobody else sees it"


@dataclass
class Filled:
    store: HistoryStore
    measured_id: int = 0
    measured: Result | None = None
    # (box, source, model, category) -> the values recorded, to check the table's means against
    energies: dict[tuple[str, str, str, str], list[float]] = field(default_factory=dict)
    tokens: list[str] = field(default_factory=list)


def measured_result(step_at_s: float = 0.5) -> Result:
    """One answer window measured for real through the wall-meter driver: 60 W idle, 140 W while working
    (from `step_at_s` after the idle baseline is done)."""
    with SimulatedMCP39F511N(power_w=60.0) as sim:
        box = MeasurementBox([McpMeter(sim.port, interval_s=0.05, timeout_s=0.3), EstimateMeter.configured(5.0, 10.0)])
        box.measure_idle(0.3)
        sim.loads[1].profile = Steps(60.0, [(sim.now() + step_at_s, 140.0)])
        # the work (140 W) as the answer's generating phase: what came before it was reading the prompt
        timing = PhaseTiming(prefill_s=step_at_s, decode_s=0.3, source="a test runner")
        _, energy = box.measure(lambda: time.sleep(step_at_s + 0.3), timing=lambda _: timing)
    base = make_result(prompt=SECRET_PROMPT, answer=SECRET_ANSWER, model="smollm2-135m", tokens=40)
    embodied = Embodied(te_g=181_000, lifespan_years=4)
    carbon = carbon_for(energy.total_j, energy.seconds, static_intensity("DE"), embodied)
    return base.model_copy(
        update={
            "energy": energy,
            "carbon": carbon,
            "box": "wallbox",
            "category": "math",
            "share_token": secrets.token_urlsafe(16),
        }
    )


def fill(store: HistoryStore) -> Filled:
    filled = Filled(store)
    result = measured_result()
    filled.measured, filled.measured_id = result, store.record(result)
    filled.tokens.append(result.share_token or "")
    filled.energies[("wallbox", "mcp39f511n", "smollm2-135m", "math")] = [result.energy.total_j or 0.0]
    plan = [
        ("testbox", "estimate", False, "smollm2-135m", "math", [40.0, 42.0, 47.0, 41.0]),
        ("testbox", "estimate", False, "smollm2-135m", "translation", [20.0, 25.0, 30.0]),  # the last: 0 tokens
        ("testbox", "estimate", False, "tinyllama", "math", [90.0, 110.0, 100.0]),
        ("gpubox", "rapl+nvml", True, "tinyllama", "math", [300.0, 320.0, 310.0]),
    ]
    for number, (box, source, measured, model, category, energies) in enumerate(plan):
        for i, joules in enumerate(energies):
            tokens = 0 if joules == 30.0 else 48
            r = make_result(
                total_j=joules,
                source=source,
                measured=measured,
                model=model,
                prompt=SECRET_PROMPT,
                answer=SECRET_ANSWER,
                user_id=f"user{number}-{i}",
                tokens=tokens,
            )
            r = r.model_copy(
                update={
                    "box": box,
                    "category": category,
                    "share_token": secrets.token_urlsafe(16),
                    "started_at": NOW + timedelta(minutes=number * 10 + i),
                }
            )
            r.request.id = f"{box}-{model}-{category}-{i}"
            store.record(r)
            filled.tokens.append(r.share_token or "")
            filled.energies.setdefault((box, source, model, category), []).append(joules)
    return filled


@contextlib.contextmanager
def announced_box(connection: redis.Redis, box: str, queue: str, state: str) -> Iterator[None]:
    """A box announcing itself as its worker's heartbeat does (its profile and state, through the
    fleet's own publishing), forgotten afterwards."""
    profile = BoxProfile(
        box=box,
        queue=queue,
        zone="DE",
        intensity_g_per_kwh=380.0,
        intensity_provenance="static",
        intensity_label="DE static",
        meter_scope="wall",
        meters=["mcp39f511n"],
        models=[BoxModel(name="smollm2-135m", size="135M", parameters_b=0.135)],
    )
    publish_profile(connection, profile, state)
    try:
        yield
    finally:
        for key in FLEET_KEYS:
            connection.hdel(key, box)
