"""The benchmark campaign: the shipped prompt sets through the real queue and worker.

Every figure is a normal measured exchange (platform "bench"), so the table is
built from history like any statistic. Request ids are deterministic per run,
model, category and prompt, so an interrupted run resumes where it stopped.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from joulebot.chat.build import InputError
from joulebot.chat.footer import sig
from joulebot.config import Settings
from joulebot.exchange import Request
from joulebot.history import HistoryStore
from joulebot.history.categories import CATEGORIES, prompt_set
from joulebot.history.store import CategoryStats
from joulebot.models import ModelUnavailable, UnknownModelError
from joulebot.queueing.catalog import catalog_for_front_end
from joulebot.queueing.client import JobError, QueueClient


@dataclass
class BenchOutcome:
    stats: list[CategoryStats]
    ran: int
    skipped: int  # already measured by an earlier, interrupted run
    failed: list[str]


# One fixed system prompt for every bench answer (never the user's or SYSTEM_PROMPT): the table
# compares models on the same input. Bench answers are single questions and do not stream.
BENCH_SYSTEM_PROMPT = "You are a helpful assistant. Answer the question directly."


def bench_prefix(run: str) -> str:
    return f"bench-{run}-"


def plan(settings: Settings, models: list[str], categories: list[str], n: int, run: str) -> list[Request]:
    """The Requests of a run, in order, without the ones already measured."""
    catalog = catalog_for_front_end(settings)
    try:
        entries = [catalog.resolve(m) for m in models]
    except (UnknownModelError, ModelUnavailable) as exc:
        raise InputError(str(exc)) from None
    unknown = [c for c in categories if c not in CATEGORIES]
    if unknown:
        raise InputError(f"unknown category {unknown[0]!r} (known: {', '.join(CATEGORIES)})")
    return [
        Request(
            id=f"{bench_prefix(run)}{entry.name}-{category}-{index:02d}",
            platform="bench",
            user_id=run,
            model=entry.name,
            prompt=prompt,
            category=category,
            max_tokens=settings.max_tokens,
            system=BENCH_SYSTEM_PROMPT,
            stream=False,
        )
        for entry in entries
        for category in categories
        for index, prompt in enumerate(prompt_set(category)[:n])
    ]


def run_bench(
    settings: Settings,
    requests: list[Request],
    run: str,
    tick: Callable[[str], None] = lambda _: None,
) -> BenchOutcome:
    history = HistoryStore.open(settings.sqlalchemy_url)
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
    return BenchOutcome(history.category_stats(bench_prefix(run)), len(todo), len(requests) - len(todo), failed)


def table(stats: list[CategoryStats], value: Callable[[CategoryStats], float | None], digits: int = 4) -> str:
    """Rows = models, columns = categories, in the layout green-coding.ai published."""
    categories = [c for c in CATEGORIES if any(s.category == c for s in stats)]
    models = sorted({s.model for s in stats})
    cell = {(s.model, s.category): value(s) for s in stats}
    header = ["", *categories]
    rows = [[m] + [("" if cell.get((m, c)) is None else sig(cell[(m, c)], digits)) for c in categories] for m in models]
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        padded = [v.ljust(w) if i == 0 else v.rjust(w) for i, (v, w) in enumerate(zip(cells, widths, strict=True))]
        return "| " + " | ".join(padded) + " |"

    return "\n".join([line(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(line, rows)])


def write_csv(stats: list[CategoryStats], path: Path) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(CategoryStats.model_fields))
        writer.writeheader()
        writer.writerows(s.model_dump() for s in stats)


def heatmap(stats: list[CategoryStats], path: Path) -> bool:
    """Mean SCI per answer as a heatmap PNG; False when matplotlib is not installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    categories = [c for c in CATEGORIES if any(s.category == c for s in stats)]
    models = sorted({s.model for s in stats})
    cell = {(s.model, s.category): (s.mean_sci_g or 0.0) * 1000 for s in stats}
    grid = [[cell.get((m, c), float("nan")) for c in categories] for m in models]
    figure, axes = plt.subplots(figsize=(1.6 * len(categories) + 3.5, 0.6 * len(models) + 1.8))
    image = axes.imshow(grid, cmap="YlOrRd", aspect="auto")
    axes.set_xticks(range(len(categories)), categories)
    axes.set_yticks(range(len(models)), models)
    for y, row in enumerate(grid):
        for x, v in enumerate(row):
            axes.text(x, y, "" if v != v else sig(v, 3), ha="center", va="center", fontsize=9)
    figure.colorbar(image, ax=axes, label="mean SCI per answer (mg CO2e)")
    axes.set_title("joulebot: SCI per answer by model and task")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return True
