"""What meters report, as plain data that crosses the queue and lands in history."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel

Scope = Literal["machine", "cpu", "gpu", "components"]  # components: a sum of cpu/gpu meters


def estimated_how(source: str) -> str:
    """What an estimate was made from, in words: the estimate meter turns the machine's busy CPU time
    into power through a model ('from CPU load'); any other source is named."""
    return "from CPU load" if source == "estimate" else f"by {source}"


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
    uncertainty_j: float | None = None  # ± J you would bet on at about 95 %; None when joules is None
    update_s: float | None = None  # how often the meter's figure can change (its time resolution)
    trace: list[tuple[float, float]] = []  # sampled meters: (seconds since the window's start, watts)

    @classmethod
    def failed(
        cls, source: str, scope: Scope, seconds: float, error: str, samples: int = 0, update_s: float | None = None
    ) -> Reading:
        """A measured source that has no figure for this window, and why."""
        return cls(
            source=source,
            scope=scope,
            measured=True,
            joules=None,
            seconds=seconds,
            samples=samples,
            error=error,
            update_s=update_s,
        )

    @property
    def short_window(self) -> bool:
        """Shorter than ten of the meter's update periods: the edges weigh heavily (see uncertainty_j)."""
        return self.update_s is not None and self.seconds < 10 * self.update_s

    @property
    def relative_uncertainty(self) -> float | None:
        if self.joules is None or self.uncertainty_j is None or self.joules <= 0:
            return None
        return self.uncertainty_j / self.joules

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
    # ± W at about 95 %: how far the idle power during an answer may be from `watts`
    # (twice the spread between sub-windows of the baseline, with the meter's own uncertainty)
    uncertainty_w: float = 0.0


class Phases(BaseModel):
    """The window's energy on each side of the first token: reading the prompt and the context
    (prefill), then generating the answer (decode). Placed by the runner's own timing, measured
    from the meter's samples (metering/phases.py); no figures, and `error` saying why, where the
    window could not be split."""

    timing: str  # whose timing placed the split: "Ollama's prompt_eval_duration and eval_duration"
    split_s: float | None = None  # seconds after the window's start where decoding began
    split_band_s: float = 0.0  # ± how far the runner's timing leaves that point uncertain
    prefill_j: float | None = None
    prefill_uncertainty_j: float | None = None  # ± J, about 95 %
    decode_j: float | None = None
    decode_uncertainty_j: float | None = None
    error: str | None = None  # why the window was not split ("too short to split: ...")

    @property
    def prefill_share(self) -> float | None:
        """The prefill's share of the two phases' energy."""
        if self.prefill_j is None or self.decode_j is None or self.prefill_j + self.decode_j <= 0:
            return None
        return self.prefill_j / (self.prefill_j + self.decode_j)


class Energy(BaseModel):
    """The machine's energy for one answer window: total, and above idle."""

    total_j: float | None
    attributable_j: float | None  # total − idle W × window; None when total is unknown
    seconds: float
    idle: IdleBaseline | None
    machine: Reading  # the reading the machine figure comes from
    components: list[Reading] = []
    uncertainty_j: float | None = None  # ± J (about 95 %) of total_j
    attributable_uncertainty_j: float | None = None  # ± J of attributable_j: adds the idle baseline's spread
    includes_reload: bool = False  # the runner loaded the model again inside the window (its energy is in here)
    reload_s: float | None = None  # how long that reload took, by the runner's own account
    phases: Phases | None = None  # prefill and decode apart; None: no runner timing (a warm-up, older answers)

    @property
    def short_window(self) -> bool:
        return self.machine.short_window

    @property
    def relative_uncertainty(self) -> float | None:
        return self.machine.relative_uncertainty

    @property
    def measured(self) -> bool:
        return self.machine.measured and self.total_j is not None

    @property
    def avg_watts(self) -> float | None:
        if self.total_j is None or self.seconds <= 0:
            return None
        return self.total_j / self.seconds
