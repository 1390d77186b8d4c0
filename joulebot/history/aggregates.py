"""The statistics, as SQL aggregates over the running sums of `stats_rollup` (rollup.py): per model,
task and basis (box, energy source, measured or estimated), never across two bases. Every mean's ± 95 %
is `intervals.Mean`, the one definition all surfaces show."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel
from sqlalchemy import Engine
from sqlalchemy.sql import FromClause

from joulebot.history import rollup
from joulebot.history.engine import starting_with
from joulebot.history.intervals import Basis, Mean, sample_stdev, systematic, wilson
from joulebot.history.tables import Exchange

C = Exchange.__table__.c  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Metric:
    """A figure a statistics table shows: its mean and ± 95 % per cell, from the rollup's sums."""

    key: str
    label: str
    unit: str
    column: Any  # a SQL expression over the exchanges, one value per answer
    sums: tuple[str, str, str]  # its count, sum and sum of squares in the statistics' rollup
    only: Any = None  # which answers have a value (beside the column not being NULL)
    # The count and sum (rollup names) and column of the part of each value that scales with the meter's
    # reading, where that is not the whole value (SCI: its E × I, not the embodied M)
    metered: tuple[str, str, Any] | None = None

    @property
    def present(self) -> Any:
        """The WHERE clause of the answers that count."""
        return self.column.is_not(None) if self.only is None else sa.and_(self.column.is_not(None), self.only)

    @property
    def needs(self) -> tuple[str, ...]:
        """The sums `mean` reads."""
        return (*self.sums, "band_j", "total_j", *(self.metered[:2] if self.metered else ()))

    def count(self, sums: Mapping[str, float]) -> int:
        """How many answers have this figure."""
        return int(sums[self.sums[0]])

    def mean(self, sums: Mapping[str, float]) -> Mean:
        """The cell's mean and ± 95 % from its sums (`needs`), over at least one answer (see `count`)."""
        n, total, squares = (sums[name] for name in self.sums)
        part = total / n
        if self.metered is not None:
            part_n = sums[self.metered[0]]
            part = sums[self.metered[1]] / part_n if part_n else 0.0
        return Mean.from_sums(int(n), total, squares, systematic(sums["band_j"], sums["total_j"], part))


METRICS = {
    m.key: m
    for m in (
        Metric(
            "sci",
            "SCI per answer (E × I + M)",
            "g CO2e",
            C.sci_g,
            ("sci_n", "sci_g", "sci_g_squares"),
            metered=("operational_n", "operational_g", C.operational_g),
        ),
        Metric(
            "j_answer", "energy per answer, total", "J", C.energy_total_j, ("answers", "total_j", "total_j_squares")
        ),
        Metric(
            "j_above_idle",
            "energy per answer, above idle",
            "J",
            C.energy_attributable_j,
            ("attributable_n", "attributable_j", "attributable_j_squares"),
        ),
        # a plain division with the zero-token answers left out by WHERE: cheaper than a CASE in every aggregate
        Metric(
            "j_token",
            "energy per generated token, total",
            "J/token",
            C.energy_total_j / C.completion_tokens,
            ("token_n", "j_per_token", "j_per_token_squares"),
            C.completion_tokens > 0,
        ),
        # the answers' energy split at the first token (metering/phases.py): what reading the prompt and
        # the context costs per token, and what generating costs per token
        Metric(
            "j_prompt_token",
            "energy per prompt token, reading it (prefill)",
            "J/token",
            C.prefill_j / C.prompt_tokens,
            ("prefill_n", "j_per_prompt_token", "j_per_prompt_token_squares"),
            C.prompt_tokens > 0,
        ),
        Metric(
            "j_output_token",
            "energy per generated token, generating it (decode)",
            "J/token",
            C.decode_j / C.completion_tokens,
            ("decode_n", "j_per_output_token", "j_per_output_token_squares"),
            C.completion_tokens > 0,
        ),
    )
}


def settings_note(settings: str, shown: bool) -> str:
    """' (repeat_penalty=1.1 …)' after a model's name where its answers of other generation settings stand
    beside these (a row, a chart, a series of their own: never one mean); nothing where they do not."""
    return f" ({settings or 'settings not recorded'})" if shown else ""


class CategoryStats(BaseModel):
    model: str
    category: str
    box: str
    energy_source: str  # never averaged across boxes or meters: each pair is its own row
    measured: bool  # False: every figure of this row is an estimate
    generation_settings: str = ""  # the sampling settings of its answers (rows of other settings are apart)
    with_images: bool = False  # answers that read images: a basis of their own, never pooled with text-only ones
    settings_shown: bool = False  # rows of other settings of this model stand beside it: `label` names them
    answers: int
    mean_total_j: float
    ci95_total_j: float | None  # ± J, 95 % interval of the mean (intervals.Mean; None for one answer)
    ci95_sci_g: float | None
    mean_attributable_j: float | None
    mean_co2e_g: float | None
    mean_sci_g: float | None
    j_per_token: float | None
    stdev_total_j: float  # spread of the total energy between answers (0 for one answer)
    scored: int = 0  # answers checked against a reference (unscored ones are neither right nor wrong)
    correct: int = 0
    accuracy: float | None = None  # correct ÷ scored
    accuracy_low: float | None = None  # 95 % Wilson interval
    accuracy_high: float | None = None
    j_per_correct: float | None = None  # total energy of the scored answers ÷ correct answers
    sci_per_correct_g: float | None = None  # SCI of the scored answers ÷ correct answers

    @property
    def settings_note(self) -> str:
        """' (repeat_penalty=1.1 …)' where rows of other generation settings of this model stand beside it."""
        return settings_note(self.generation_settings, self.settings_shown)

    @property
    def label(self) -> str:
        return self.model + self.settings_note

    @property
    def basis(self) -> Basis:
        return Basis(box=self.box, source=self.energy_source, measured=self.measured, images=self.with_images)


def by_basis(stats: list[CategoryStats]) -> dict[Basis, list[CategoryStats]]:
    """Rows grouped by what makes them comparable (box, energy source, measured or estimated)."""
    groups: dict[Basis, list[CategoryStats]] = {}
    for row in stats:
        groups.setdefault(row.basis, []).append(row)
    return groups


def _told_apart(stats: list[CategoryStats]) -> list[CategoryStats]:
    """Where one model has rows of several generation settings side by side (same task and basis),
    each row's label names its settings: they are other answers, never one mean."""
    seen: dict[tuple[str, str, Basis], int] = {}
    for row in stats:
        key = (row.model, row.category, row.basis)
        seen[key] = seen.get(key, 0) + 1
    return [row.model_copy(update={"settings_shown": seen[(row.model, row.category, row.basis)] > 1}) for row in stats]


def _category_stats(sums: dict[str, Any], by_category: bool = True) -> CategoryStats:
    """One row of the statistics from its rollup sums (see rollup.FIGURES)."""
    n, scored, correct = sums["answers"], sums["scored"], sums["correct"]
    energy = METRICS["j_answer"].mean(sums)  # a rollup row counts answers with a total energy only
    sci = METRICS["sci"].mean(sums) if METRICS["sci"].count(sums) else None
    low, high = wilson(correct, scored) if scored else (None, None)
    return CategoryStats(
        model=sums["model"],
        category=sums["category"] if by_category else "",
        box=sums["box"],
        energy_source=sums["energy_source"],
        measured=bool(sums["energy_measured"]),
        generation_settings=sums["generation_settings"],
        with_images=bool(sums["with_images"]),
        ci95_total_j=energy.ci95,
        ci95_sci_g=sci.ci95 if sci else None,
        scored=scored,
        correct=correct,
        accuracy=correct / scored if scored else None,
        accuracy_low=low,
        accuracy_high=high,
        j_per_correct=sums["scored_total_j"] / correct if correct else None,
        sci_per_correct_g=sums["scored_sci_g"] / correct if correct and sums["scored_sci_n"] == scored else None,
        answers=n,
        mean_total_j=energy.mean,
        mean_attributable_j=sums["attributable_j"] / sums["attributable_n"] if sums["attributable_n"] else None,
        mean_co2e_g=sums["operational_g"] / sums["operational_n"] if sums["operational_n"] else None,
        mean_sci_g=sci.mean if sci else None,
        j_per_token=sums["total_j"] / sums["completion_tokens"] if sums["completion_tokens"] else None,
        stdev_total_j=sample_stdev(n, sums["total_j"], sums["total_j_squares"]),
    )


class Statistics:
    """The statistics queries (a part of HistoryStore)."""

    engine: Engine

    def model_stats(self) -> list[CategoryStats]:
        """Per model and basis (box, energy source, measured or estimated, with images or not), all categories
        together (`category` is empty): never averaged across bases."""
        return sorted(self._aggregate(None, by_category=False, images=None), key=lambda s: s.mean_total_j)

    def category_stats(
        self,
        request_id_prefix: str | None = None,
        box: str | None = None,
        continued: bool = False,
        images: bool = False,
    ) -> list[CategoryStats]:
        """Per model, task category, box and meter, over every first question with a total energy (or one run's,

        Figures from different boxes or meters are never averaged together: each pair is its own row.
        One aggregate over the running sums of `stats_rollup` (a few hundred rows however long the
        history); one benchmark run's (`request_id_prefix`) straight from its own rows, found through
        the request id's index. `continued=True`: over the later turns of conversations instead (they
        carry context, cost more); `images=True`: over the answers that read images instead.
        """
        stats = self._aggregate(request_id_prefix, by_category=True, box=box, continued=continued, images=images)
        return sorted(stats, key=lambda s: (s.model, s.category, s.box, s.energy_source, not s.measured))

    def _aggregate(
        self,
        request_id_prefix: str | None,
        by_category: bool,
        box: str | None = None,
        continued: bool = False,
        from_rows: bool = False,
        images: bool | None = False,
    ) -> list[CategoryStats]:
        """`from_rows`: the same sums from the exchanges instead of the rollup (what the rollup must equal);
        `images`: the answers with images, those without (False), or each apart (None)."""
        match: dict[str, Any] = {"turn_kind": rollup.LATER if continued else rollup.FIRST}
        match["energy_includes_reload"] = False  # a reload inside the window is not comparable
        if box is not None:
            match["box"] = box
        if images is not None:
            match["with_images"] = images
        group = [*(["category"] if by_category else []), "box", "energy_source", "model", "energy_measured"]
        group += ["generation_settings", "with_images"]  # answers made with other settings or images: never pooled
        with self.engine.connect() as connection:
            source: FromClause = rollup.STATS_ROLLUP
            if request_id_prefix or from_rows:
                where = starting_with(self.engine.dialect.name, rollup.X.request_id, request_id_prefix or "")
                source = rollup.direct(where).subquery()
            rows = connection.execute(rollup.totals(group, match, source)).all()
        return _told_apart([_category_stats(rollup.as_numbers(row), by_category) for row in rows])

    def box_means(self, box: str, settings: Mapping[str, str]) -> list[dict]:
        """One box's mean total energy and answer time per model and task (what routing expects): every
        text-only answer with a total energy, later turns and reloads included, made with the model's
        generation settings now (`settings`: model → its settings' tag; a model not in it is not offered here
        now). Answers of its other settings are other answers: never pooled into what it is expected to cost."""
        query = rollup.totals(["model", "category", "generation_settings"], {"box": box, "with_images": False})
        with self.engine.connect() as connection:
            rows = [rollup.as_numbers(r) for r in connection.execute(query)]
        return [
            {
                "model": r["model"],
                "category": r["category"],
                "answers": r["answers"],
                "mean_total_j": r["total_j"] / r["answers"],
                "mean_seconds": r["seconds"] / r["answers"],
            }
            for r in rows
            if settings.get(r["model"]) == r["generation_settings"]
        ]

    def boxes(self) -> list[str]:
        """Every box that has answers in history."""
        with self.engine.connect() as connection:
            return sorted(connection.execute(sa.select(C.box).distinct()).scalars())
