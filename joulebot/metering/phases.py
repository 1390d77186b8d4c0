"""An answer window cut where the first token came: reading the prompt (prefill), then generating (decode).

The runner says how long each phase took (Ollama: `prompt_eval_duration` and `eval_duration`;
llama.cpp: its first-token time); the meter's samples say what power was drawn meanwhile.
The window closes right after the last token, so the decode phase is put at the window's
end; the window's time the runner does not account for (the request on its way in, the
meters' own start and stop) could lie on either side of the first token, so it is the split
point's own band. A meter that reads only at the window's edges (a counter) cannot split; a
window under two of its meter's updates is too short to split: both say so.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from joulebot.metering.reading import Phases

# the runner's timings may overrun the window by this much (clocks read at slightly different
# moments) before they are taken as not belonging to it
OVERRUN_S, OVERRUN_SHARE = 0.005, 0.01


class CannotSplit(Exception):
    """The window's energy cannot be cut at the first token; `str()` says why."""


@dataclass(frozen=True)
class PhaseTiming:
    """The runner's own account of one generation."""

    prefill_s: float  # reading the prompt (and any model load the runner reports inside it)
    decode_s: float  # generating, first token to last
    source: str  # whose timing it is, for people: "Ollama's prompt_eval_duration and eval_duration"


@dataclass(frozen=True)
class PhaseEnergy:
    """A window's joules on each side of a point, each ± J (about 95 %)."""

    prefill_j: float
    prefill_uncertainty_j: float
    decode_j: float
    decode_uncertainty_j: float


def place(timing: PhaseTiming, window_s: float) -> tuple[float, float]:
    """(seconds after the window's start where decoding began, ± how far off that point can be)."""
    if timing.decode_s <= 0:
        raise CannotSplit("no token was generated: there is no decode phase")
    if timing.prefill_s < 0:
        raise CannotSplit("the runner reported a negative prompt time")
    slack = window_s - timing.prefill_s - timing.decode_s
    if slack < -max(OVERRUN_S, OVERRUN_SHARE * window_s):
        spent = timing.prefill_s + timing.decode_s
        raise CannotSplit(f"the runner's timings ({spent:.3f} s) do not fit the {window_s:.3f} s window")
    return min(window_s, max(0.0, window_s - timing.decode_s)), max(0.0, slack)


def phases(timing: PhaseTiming, window_s: float, cut: Callable[[float, float], PhaseEnergy]) -> Phases:
    """The Phases of one window: `cut(at_s, band_s)` splits the meter's figure at a point, or raises
    CannotSplit."""
    try:
        at_s, band_s = place(timing, window_s)
        energy = cut(at_s, band_s)
    except CannotSplit as exc:
        return Phases(timing=timing.source, error=str(exc))
    return Phases(
        timing=timing.source,
        split_s=at_s,
        split_band_s=band_s,
        prefill_j=energy.prefill_j,
        prefill_uncertainty_j=energy.prefill_uncertainty_j,
        decode_j=energy.decode_j,
        decode_uncertainty_j=energy.decode_uncertainty_j,
    )
