"""The benchmark campaign: the shipped prompt sets through the real queue and worker.

Every figure is a normal measured exchange (platform "bench"), so the table is
built from history like any statistic. Request ids are deterministic per run,
model, category and prompt, so an interrupted run resumes where it stopped.
Once every answer is back, each is checked against its prompt's reference
(joulebot.campaign) and the verdict is stored with the exchange.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from joulebot.campaign.references import Reference
from joulebot.campaign.scoring import ScoreSummary, score_run
from joulebot.categories import CATEGORIES, prompt_set
from joulebot.chat.asking import InputError
from joulebot.config import Settings
from joulebot.exchange import Request
from joulebot.history import open_history
from joulebot.history.aggregates import CategoryStats
from joulebot.models import ModelUnavailable, UnknownModelError
from joulebot.number_format import sig
from joulebot.queueing.catalog import catalog_for_front_end
from joulebot.queueing.client import JobError, NoBox, QueueClient
from joulebot.tables import csv_row, row_label


@dataclass
class BenchOutcome:
    stats: list[CategoryStats]  # one row per model, task, box and meter: never averaged across them
    ran: int
    skipped: int  # already measured by an earlier, interrupted run
    failed: list[str]
    scores: ScoreSummary
    answers: list[dict]  # one row per answer of the run, with its verdict


# One fixed system prompt for every bench answer (never the user's or SYSTEM_PROMPT): the table
# compares models on the same input. Bench answers are single questions and do not stream.
BENCH_SYSTEM_PROMPT = "You are a helpful assistant. Answer the question directly."


# A run name becomes part of job ids (RQ accepts letters, digits, "-" and "_") and of file names.
RUN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,39}")


def check_run_name(run: str) -> str:
    if not RUN_NAME.fullmatch(run):
        raise InputError(
            f"--run {run!r} is not a run name: 1 to 40 letters, digits, '-' or '_', starting with a letter or digit"
            " (e.g. v1-2)"
        )
    return run


def bench_prefix(run: str) -> str:
    return f"bench-{run}-"


def plan(
    settings: Settings, models: list[str], categories: list[str], n: int, run: str, boxes: list[str] | None = None
) -> list[Request]:
    """The Requests of a run, in order, each with its box chosen; one set per box when `boxes` are named."""
    check_run_name(run)
    catalog = catalog_for_front_end(settings)
    try:
        entries = [catalog.resolve(m) for m in models]
    except (UnknownModelError, ModelUnavailable) as exc:
        raise InputError(str(exc)) from None
    unknown = [c for c in categories if c not in CATEGORIES]
    if unknown:
        raise InputError(f"unknown category {unknown[0]!r} (known: {', '.join(CATEGORIES)})")
    client = QueueClient(settings)
    requests = []
    chosen: list[str | None] = list(boxes) if boxes else [None]  # None: routing decides, request by request
    for box in chosen:
        where = f"{box}-" if box else ""
        for entry in entries:
            for category in categories:
                for index, prompt in enumerate(prompt_set(category)[:n]):
                    request = Request(
                        id=f"{bench_prefix(run)}{where}{entry.name}-{category}-{index:02d}",
                        platform="bench",
                        user_id=run,
                        model=entry.name,
                        prompt=prompt,
                        category=category,
                        max_tokens=settings.max_tokens,
                        system=BENCH_SYSTEM_PROMPT,
                        stream=False,
                    )
                    try:
                        requests += client.route([request], box)
                    except NoBox as exc:
                        raise InputError(str(exc)) from None
    return requests


def run_bench(
    settings: Settings,
    requests: list[Request],
    run: str,
    references: dict[str, dict[str, Reference]],
    tick: Callable[[str], None] = lambda _: None,
    rescore: bool = False,
) -> BenchOutcome:
    history = open_history(settings.sqlalchemy_url, settings.redact, settings.history_timeout_s)
    if rescore:  # the measurements stay; every answer of the run is checked again below
        history.clear_scores(bench_prefix(run))
    done = history.request_ids(bench_prefix(run))
    todo = [r for r in requests if r.id not in done]
    client = QueueClient(settings)
    client.ensure_ready()
    jobs = []
    for request in todo:
        # still queued from an interrupted run: wait for it rather than queue it twice
        job = client.resumable(request.id) or client.submit(request)
        jobs.append((request, job))
    failed = []
    for request, job in jobs:
        try:
            client.wait(job)
        except JobError as exc:
            failed.append(f"{request.id}: {exc}")
        tick(request.id)
    prefix = bench_prefix(run)
    scores = score_run(history, prefix, references)  # every answer is back: nothing is being measured now
    stats, answers = history.category_stats(prefix), history.answer_rows(prefix)
    return BenchOutcome(stats, len(todo), len(requests) - len(todo), failed, scores, answers)


# name → (colour-bar title, value, scale): what `joulebot bench --heatmap` can draw
HEATMAP_VALUES: dict[str, tuple[str, Callable[[CategoryStats], float | None], float]] = {
    "sci": ("mean SCI per answer (mg CO2e)", lambda s: s.mean_sci_g, 1000),
    "energy": ("mean energy per answer (J, total)", lambda s: s.mean_total_j, 1),
    "accuracy": ("share of correct answers (%)", lambda s: s.accuracy, 100),
    "energy-per-correct": ("energy per correct answer (J, total)", lambda s: s.j_per_correct, 1),
    "sci-per-correct": ("SCI per correct answer (mg CO2e)", lambda s: s.sci_per_correct_g, 1000),
}


def write_csv(stats: list[CategoryStats], path: Path) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=[*CategoryStats.model_fields, "kind"])
        writer.writeheader()
        writer.writerows(csv_row(s) for s in stats)


def write_answers_csv(answers: list[dict], path: Path) -> None:
    """One row per answer: its figures and `correct` (true, false, or empty when unscored)."""
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(answers[0]) if answers else ["request_id", "correct"])
        writer.writeheader()
        writer.writerows(answers)


def heatmap(stats: list[CategoryStats], path: Path, metric: str = "sci") -> bool:
    """One of HEATMAP_VALUES (mean SCI per answer by default) as a heatmap PNG; False without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    title, value, scale = HEATMAP_VALUES[metric]
    categories = [c for c in CATEGORIES if any(s.category == c for s in stats)]
    label = row_label(stats)
    models = sorted({label(s) for s in stats})
    cell = {(label(s), s.category): (float("nan") if value(s) is None else value(s) * scale) for s in stats}  # type: ignore[operator]
    grid = [[cell.get((m, c), float("nan")) for c in categories] for m in models]
    figure, axes = plt.subplots(figsize=(1.6 * len(categories) + 3.5, 0.6 * len(models) + 1.8))
    image = axes.imshow(grid, cmap="YlGn" if metric == "accuracy" else "YlOrRd", aspect="auto")
    axes.set_xticks(range(len(categories)), categories)
    axes.set_yticks(range(len(models)), models)
    measured = {(label(s), s.category) for s in stats}
    for y, row in enumerate(grid):
        for x, v in enumerate(row):
            blank = "—" if (models[y], categories[x]) in measured else ""  # e.g. no correct answer to divide by
            axes.text(x, y, blank if v != v else sig(v, 3), ha="center", va="center", fontsize=9)
    figure.colorbar(image, ax=axes, label=title)
    axes.set_title(f"joulebot: {title.split(' (')[0]} by model and task")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return True
