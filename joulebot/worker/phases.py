"""The runner's own timing of an answer's two phases, by which the meter's figure is split."""

from __future__ import annotations

from joulebot.metering.phases import PhaseTiming
from joulebot.metering.reading import Phases
from joulebot.models.runner import Generation

OLLAMA = "Ollama's prompt_eval_duration and eval_duration"
FIRST_TOKEN = "the runner's first-token time (llama.cpp: its first sampling call)"


def phase_timing(generation: Generation) -> PhaseTiming | None:
    """Ollama's durations where it reports them (its load, if any, counts with reading the prompt),
    else the first-token time; None when the runner gave neither."""
    stats = generation.runner_stats
    if "prompt_eval_duration" in stats and "eval_duration" in stats:
        prefill = stats.get("load_duration", 0.0) + stats["prompt_eval_duration"]
        return PhaseTiming(prefill, stats["eval_duration"], OLLAMA)
    if generation.first_token_s is not None:
        return PhaseTiming(generation.first_token_s, generation.seconds - generation.first_token_s, FIRST_TOKEN)
    return None


def not_split(phases: Phases | None, why: str) -> Phases:
    """The answer's phases left unsplit, and why (a model reload inside the window is neither phase)."""
    return Phases(timing=phases.timing if phases else "", error=why)
