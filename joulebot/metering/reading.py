"""What meters report, as plain data that crosses the queue and lands in history."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel

Scope = Literal["machine", "cpu", "gpu", "components"]  # components: a sum of cpu/gpu meters


class Reading(BaseModel):
    """One meter's account of one window."""

    source: str  # "mcp39f511n", "rapl", "nvml", "estimate"
    scope: Scope
    measured: bool  # False for an estimate: never print it as a measurement
    joules: float | None  # None: the meter failed in this window (see `error`)
    seconds: float
    samples: int = 0
    method: str = ""  # how the figure was obtained, shown to users for estimates
    error: str | None = None  # why this reading has no joules
    note: str = ""  # why a preferred source was not used for this figure (e.g. "mcp39f511n failed: …")
    trace: list[tuple[float, float]] = []  # sampled meters: (seconds since the window's start, watts)

    @property
    def watts(self) -> float | None:
        if self.joules is None or self.seconds <= 0:
            return None
        return self.joules / self.seconds


class IdleBaseline(BaseModel):
    """Machine power with no job running, measured by the same meter as the answers."""

    watts: float
    seconds: float
    source: str
    measured: bool
    measured_at: datetime


class Energy(BaseModel):
    """The machine's energy for one answer window: total, and above idle."""

    total_j: float | None
    attributable_j: float | None  # total − idle W × window; None when total is unknown
    seconds: float
    idle: IdleBaseline | None
    machine: Reading  # the reading the machine figure comes from
    components: list[Reading] = []

    @property
    def measured(self) -> bool:
        return self.machine.measured and self.total_j is not None

    @property
    def avg_watts(self) -> float | None:
        if self.total_j is None or self.seconds <= 0:
            return None
        return self.total_j / self.seconds
