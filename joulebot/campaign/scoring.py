"""Scoring a benchmark run: after its answers were measured, on the front-end side.

The checkers (above all the code sandbox) use the CPU, so they run only once every
answer of the run is back: never inside the worker and never while the worker
measures an answer on this box. A run interrupted before scoring is scored by the
next run with the same name (the exchanges without a score are picked up).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from joulebot.campaign.checkers import Verdict, check
from joulebot.campaign.references import Reference
from joulebot.history import HistoryStore


@dataclass
class ScoreSummary:
    correct: int = 0
    wrong: int = 0
    unscored: int = 0


def score_run(
    history: HistoryStore,
    request_id_prefix: str,
    references: dict[str, dict[str, Reference]],
    tick: Callable[[str], None] = lambda _: None,
) -> ScoreSummary:
    """Check every measured answer of the run that has no score yet; store each verdict with its exchange."""
    summary = ScoreSummary()
    for task in history.to_score(request_id_prefix):
        if not task.prompt and not task.answer:
            verdict = Verdict.unscored("its words were removed by retention")
        else:
            verdict = check(references.get(task.category, {}).get(task.prompt), task.answer)
        history.set_score(task.id, verdict.correct, verdict.score, verdict.note)
        if verdict.correct is None:
            summary.unscored += 1
        elif verdict.correct:
            summary.correct += 1
        else:
            summary.wrong += 1
        tick(task.request_id)
    return summary
