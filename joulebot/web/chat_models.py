"""The web chat's model picker: what `GET /v1/models` says of each model, as one line a person reads —
its size, whether it sees images, and what it measured per answer on the box that offers it (each box's
and each meter's figure apart: never averaged together)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from joulebot.number_format import plus_minus, sig
from joulebot.web.history_view import HistoryView, source_label
from joulebot.web.openai_asking import ApiQueue
from joulebot.web.openai_models import cards


@dataclass(frozen=True)
class ModelChoice:
    name: str
    label: str
    vision: bool


def _measured(card: dict[str, Any]) -> str:
    """'0.52 ± 0.1 J total per answer on box-a (estimated from CPU load …, 12 answers)': the first box
    with figures, its text-only answers first (then the figure of the most answers), and how it was got."""
    for box in card["joulebot"]["boxes"]:
        if figures := box["energy_per_answer"]:
            figure = min(figures, key=lambda f: (f["with_images"], -f["answers"]))
            n, how = figure["answers"], source_label(figure["source"], figure["measured"])
            mean = f"{sig(figure['mean_j'])}{plus_minus(figure['ci95_j'])} J total per answer on {box['box']}"
            return f"{mean} ({how}, {n} answer{'s' * (n != 1)})"
    return "no answers measured yet"


def choices(api: ApiQueue, history: HistoryView) -> list[ModelChoice]:
    """Blocking (Redis, history): every model the fleet offers now."""
    out = []
    for card in cards(api, history):
        extra = card["joulebot"]
        sees = " · sees images" if extra["vision"] else ""
        label = f"{card['id']} · {extra['size']}{sees} · {_measured(card)}"
        out.append(ModelChoice(card["id"], label, bool(extra["vision"])))
    return out
