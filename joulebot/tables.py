"""The model × task text tables that `joulebot stats` and `joulebot bench` print, and their CSV rows.

Both the terminal and the benchmark campaign read them, so they live apart from either: printing
the history's tables needs neither the queue nor the campaign's scoring.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from joulebot.categories import CATEGORIES
from joulebot.number_format import sig

if TYPE_CHECKING:
    from joulebot.history.aggregates import CategoryStats


def row_label(stats: list[CategoryStats]) -> Callable[[CategoryStats], str]:
    """Rows are models; a run over several boxes or meters gets one row per model, box and meter."""
    if len({(s.box, s.energy_source) for s in stats}) <= 1:
        return lambda s: s.label
    return lambda s: f"{s.label} @ {s.box} ({s.energy_source})"


def table(stats: list[CategoryStats], value: Callable[[CategoryStats], float | str | None], digits: int = 4) -> str:
    """Rows = models, columns = categories, in the layout green-coding.ai published."""
    categories = [c for c in CATEGORIES if any(s.category == c for s in stats)]
    label = row_label(stats)
    models = sorted({label(s) for s in stats})
    cell = {(label(s), s.category): value(s) for s in stats}

    def shown(v: float | str | None) -> str:
        return "" if v is None else v if isinstance(v, str) else sig(v, digits)

    header = ["", *categories]
    rows = [[m] + [shown(cell.get((m, c))) for c in categories] for m in models]
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        padded = [v.ljust(w) if i == 0 else v.rjust(w) for i, (v, w) in enumerate(zip(cells, widths, strict=True))]
        return "| " + " | ".join(padded) + " |"

    return "\n".join([line(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(line, rows)])


# Below this many answers a mean's 95 % interval is wider than the figure tells (Student's t for one
# degree of freedom is 12.7): the cell says so instead of printing "53.4 ± 402"
MIN_ANSWERS_FOR_INTERVAL = 3


def mean_with_band(mean: float, band: float | None, answers: int, unit: str = "", note: str = "") -> str:
    """'50.0 ± 25 J (3, note)': a mean, its 95 % confidence interval and how many answers it rests on; with
    fewer than three answers '53.4 J (n = 2, too few for an interval, note)'."""
    more = f", {note}" if note else ""
    if answers < MIN_ANSWERS_FOR_INTERVAL:
        return f"{sig(mean)}{unit} (n = {answers}, too few for an interval{more})"
    return sig(mean) + ("" if band is None else f" ± {sig(band, 2)}") + f"{unit} ({answers}{more})"


def with_band(
    value: Callable[[CategoryStats], float | None], band: Callable[[CategoryStats], float | None]
) -> Callable[[CategoryStats], str | None]:
    """A table cell: `mean_with_band` of each row."""

    def cell(s: CategoryStats) -> str | None:
        mean = value(s)
        return None if mean is None else mean_with_band(mean, band(s), s.answers)

    return cell


def accuracy_cell(s: CategoryStats) -> str:
    """'60% (23–88)': share correct and its 95 % Wilson interval; 'unscored' without a reference."""
    if not s.scored or s.accuracy is None or s.accuracy_low is None or s.accuracy_high is None:
        return "unscored"
    return f"{s.accuracy:.0%} ({s.accuracy_low * 100:.0f}–{s.accuracy_high * 100:.0f})"


def per_correct_cell(value: Callable[[CategoryStats], float | None]) -> Callable[[CategoryStats], float | str | None]:
    """A per-correct-answer figure, '—' where answers were scored and none was correct."""

    def cell(s: CategoryStats) -> float | str | None:
        if not s.scored:
            return None
        figure = value(s)
        return "—" if figure is None else figure

    return cell


# name → (title, cell): the tables `joulebot bench` prints, in this order
TABLES: dict[str, tuple[str, Callable[[CategoryStats], float | str | None]]] = {
    "accuracy": ("accuracy (share correct, 95 % Wilson interval in %)", accuracy_cell),
    "energy": (
        "mean energy per answer (J, total) ± 95 % interval of the mean (answers)",
        with_band(lambda s: s.mean_total_j, lambda s: s.ci95_total_j),
    ),
    "energy-per-correct": (
        "energy per correct answer (J, total of the scored answers ÷ correct ones)",
        per_correct_cell(lambda s: s.j_per_correct),
    ),
    "sci": (
        "mean SCI per answer (g CO2e) ± 95 % interval of the mean (answers)",
        with_band(lambda s: s.mean_sci_g, lambda s: s.ci95_sci_g),
    ),
    "sci-per-correct": ("SCI per correct answer (g CO2e)", per_correct_cell(lambda s: s.sci_per_correct_g)),
}


def by_box(stats: list[CategoryStats]) -> dict[str, list[CategoryStats]]:
    """Each box's rows: energy on a GPU box and on a CPU box are not one population, so each box gets
    its own tables."""
    boxes: dict[str, list[CategoryStats]] = {}
    for row in stats:
        boxes.setdefault(row.box, []).append(row)
    return dict(sorted(boxes.items()))


def sources_line(stats: list[CategoryStats]) -> str:
    """Where the energy figures come from, said once under the tables."""
    pairs = sorted({(s.box, s.energy_source) for s in stats})

    def said(box: str, source: str) -> str:
        return f"{'estimated (no meter)' if source == 'estimate' else f'measured by {source}'} on {box}"

    return "energy: " + "; ".join(said(box, source) for box, source in pairs)


def csv_row(row: CategoryStats) -> dict:
    """A CSV row: every figure, and what it is (`kind`: measured or estimated, never mixed)."""
    figures = row.model_dump(exclude={"settings_shown"})
    return {**figures, "kind": "measured" if row.measured else "estimated (not a measurement)"}


def tables_per_box(stats: list[CategoryStats], metrics: list[str]) -> str:
    """The tables named in `metrics` (keys of TABLES) for each box on its own (a GPU box and a CPU box
    are not one population), then where the energy figures come from."""
    boxes = by_box(stats)
    lines = []
    for number, (box, box_rows) in enumerate(boxes.items()):
        if len(boxes) > 1:
            lines.append(("\n" if number else "") + f"── box {box} ──")
        for index, name in enumerate(metrics):
            title, cell = TABLES[name]
            lines.append(("\n" if index or number else "") + f"{title}:")
            lines.append(table(box_rows, cell))
    lines.append(f"\n{sources_line(stats)}; figures of different boxes or energy sources are never compared")
    return "\n".join(lines)
