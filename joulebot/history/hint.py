"""The greener-model hint: 'as accurate on translation here (80 % vs 70 % right), tinyllama used 4× less
energy than mistral', from the statistics' running sums of one task on one box and meter."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import NamedTuple

from sqlalchemy import Engine

from joulebot.exchange import Result
from joulebot.history import rollup
from joulebot.history.intervals import wilson


class HintSums(NamedTuple):
    """What the greener-model hint needs of one model's answers in one category, box and meter."""

    answers: int = 0  # with a total energy
    total_j: float = 0.0
    scored: int = 0
    right: int = 0


class GreenerHint:
    """The hint and the sums it holds between reads (a part of HistoryStore)."""

    engine: Engine
    # (category, box, source) → when read, and the sums per (model, generation settings)
    _hint_sums: dict[tuple[str, str, str], tuple[float, dict[tuple[str, str], HintSums]]]

    # The hint runs after every answer. Its per-category sums are read from the rollup (a few rows)
    # at most this often and kept up to date by this store's own writes in between, which saves a
    # round trip on the answer's path; other processes' writes (another box on the same database)
    # count from the next read.
    HINT_REFRESH_S = 60.0

    def greener_hint(
        self,
        category: str,
        model: str,
        candidates: list[str],
        box: str,
        source: str,
        min_scored: int = 5,
        settings: Mapping[str, str] | None = None,
    ) -> str | None:
        """'as accurate on translation here (80 % vs 70 % right), tinyllama: 4× less energy than mistral'.

        Only from this box and meter, only for a model whose measured accuracy on the task is
        not worse than this one's within the intervals (its 95 % Wilson interval reaches this
        model's share correct), and only when it used at least 2× less energy on average.
        Without scores for both models there is no hint: cheaper is no use if it is wrong. Each model's
        answers count only with its generation settings now (`settings`, by model; '' where not given).
        """
        sums = self._hint_sums_for(category, box, source)
        now_made = {(m, (settings or {}).get(m, "")) for m in [model, *candidates]}
        found = {
            m: (s.total_j / s.answers, s.scored, s.right)
            for (m, tag), s in sums.items()
            if s.scored >= min_scored and (m, tag) in now_made
        }
        if model not in found:
            return None
        mean_j, n, right = found[model]
        share = right / n
        good = {
            m: found[m]
            for m in candidates
            if m in found and m != model and wilson(found[m][2], found[m][1])[1] >= share and found[m][0] > 0
        }
        if not good:
            return None
        best = min(good, key=lambda m: good[m][0])
        ratio = mean_j / good[best][0]
        if ratio < 2:
            return None
        other_share = good[best][2] / good[best][1]
        estimated = " (estimates, not measurements)" if source == "estimate" else ""
        return (
            f"as accurate on {category} here ({other_share:.0%} vs {share:.0%} right), "
            f"{best} used {ratio:.0f}× less energy than {model}{estimated}"
        )

    def _hint_sums_for(self, category: str, box: str, source: str) -> dict[tuple[str, str], HintSums]:
        """Per model and generation settings, for one category on one box and meter (see HINT_REFRESH_S)."""
        key = (category, box, source)
        read_at, sums = self._hint_sums.get(key, (float("-inf"), {}))
        if time.monotonic() - read_at > self.HINT_REFRESH_S:
            match = {"turn_kind": rollup.FIRST, "category": category, "box": box, "energy_source": source}
            match["with_images"] = False  # the hint compares answers to text questions
            query = rollup.totals(["model", "generation_settings"], {**match, "energy_includes_reload": False})
            with self.engine.connect() as connection:
                rows = [rollup.as_numbers(row) for row in connection.execute(query)]
            sums = {
                (r["model"], r["generation_settings"]): HintSums(r["answers"], r["total_j"], r["scored"], r["correct"])
                for r in rows
            }
            self._hint_sums[key] = (time.monotonic(), sums)
        return sums

    def _hint_counts(self, result: Result) -> None:
        """This store's own new answer, into the sums it holds (an answer is scored later: scores forget)."""
        energy = result.energy
        kept = self._hint_sums.get((result.category, result.box, energy.machine.source))
        if kept is not None and energy.total_j is not None and not energy.includes_reload and not result.image_count:
            key = (result.model, result.generation_settings)
            sums = kept[1].get(key, HintSums())
            kept[1][key] = sums._replace(answers=sums.answers + 1, total_j=sums.total_j + energy.total_j)
