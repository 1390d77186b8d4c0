"""`joulebot bench`: the shipped prompt sets through the real queue and worker, with a progress bar;
the scored tables, the CSVs and the heatmap."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from joulebot.chat.asking import InputError
from joulebot.cli.console import console, fail, say
from joulebot.cli.store import history_errors
from joulebot.config import Settings, get_settings
from joulebot.exchange import Request

if TYPE_CHECKING:
    from joulebot.campaign.references import Reference
    from joulebot.campaign.runner import BenchOutcome


def bench(
    models: str,
    categories: str,
    n: int,
    run: str,
    out_dir: Path,
    references: Path | None,
    heatmap_of: str,
    rescore: bool,
    boxes: str | None,
) -> None:
    """Plan the run (a bad reference file or name costs no energy), run it, then show and write it."""
    from joulebot.campaign.references import ReferenceError, load_references
    from joulebot.campaign.runner import HEATMAP_VALUES, plan

    if heatmap_of not in HEATMAP_VALUES:
        raise fail(f"unknown heatmap {heatmap_of!r} (known: {', '.join(HEATMAP_VALUES)})", 2)
    settings = get_settings()
    chosen = [b.strip() for b in boxes.split(",") if b.strip()] if boxes else None
    try:
        checked = load_references(references)  # before anything is queued: a bad file costs no energy
        requests = plan(settings, models.split(","), [c.strip() for c in categories.split(",")], n, run, chosen)
    except (InputError, ReferenceError) as exc:
        raise fail(str(exc), 2) from None
    outcome = _measure(settings, requests, run, checked, rescore)
    say(f"{outcome.ran} answers measured, {outcome.skipped} already measured, {len(outcome.failed)} failed")
    scores = outcome.scores
    say(f"{scores.correct} correct, {scores.wrong} wrong, {scores.unscored} unscored (newly checked)")
    for failure in outcome.failed:
        say(f"  failed: {failure}", stderr=True)
    if not outcome.stats:
        raise fail("no measurements to show")
    _write(outcome, run, out_dir, heatmap_of)


def _measure(
    settings: Settings, requests: list[Request], run: str, checked: dict[str, dict[str, Reference]], rescore: bool
) -> BenchOutcome:
    """The run through the queue, with a progress bar on stderr."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from joulebot.campaign.runner import run_bench
    from joulebot.queueing.client import JobError

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console(True)) as progress:
        task = progress.add_task(f"bench {run}", total=len(requests))
        done_before = len(requests)

        def tick(request_id: str) -> None:
            progress.update(task, advance=1, description=request_id.removeprefix(f"bench-{run}-"))

        try:
            with history_errors():
                outcome = run_bench(settings, requests, run, checked, tick, rescore)
        except JobError as exc:
            raise fail(str(exc)) from None
        progress.update(task, completed=done_before)
    return outcome


def _write(outcome: BenchOutcome, run: str, out_dir: Path, heatmap_of: str) -> None:
    """The tables of each box on stdout; the run's CSVs and its heatmap in `out_dir`."""
    from joulebot.campaign.runner import heatmap, write_answers_csv, write_csv
    from joulebot.tables import tables_per_box

    say(tables_per_box(outcome.stats, ["accuracy", "energy", "energy-per-correct", "sci", "sci-per-correct"]))
    out_dir.mkdir(parents=True, exist_ok=True)
    write_csv(outcome.stats, out_dir / f"{run}.csv")
    write_answers_csv(outcome.answers, out_dir / f"{run}-answers.csv")
    drawn = heatmap(outcome.stats, out_dir / f"{run}.png", heatmap_of)
    written = f"{out_dir / f'{run}.csv'}, {out_dir / f'{run}-answers.csv'}"
    pictured = (
        f" and {out_dir / f'{run}.png'} ({heatmap_of})" if drawn else " (pip install 'joulebot[bench]' for the heatmap)"
    )
    say(f"\nwrote {written}{pictured}")
