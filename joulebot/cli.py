"""The terminal front end: `joulebot ask`, `compare`, `models`, `history`, `worker`.

It goes through the same queue and worker as the chat bots: in embedded mode it
starts the embedded Redis and worker on first use (they stay up for a while so
the next question is fast).
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import functools
import json
import os
import signal
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, get_args

from joulebot.chat.asking import InputError, build_request
from joulebot.chat.footer import energy_ratio, footer
from joulebot.chat.status import status_text
from joulebot.config import Settings, SettingsError, get_settings
from joulebot.exchange import Request, Result, Units
from joulebot.number_format import sig

if TYPE_CHECKING:
    from rich.console import Console
    from rich.status import Status


# `joulebot ask` on a warm worker is mostly Python starting up: its path imports only what it
# uses. rich (the spinner, JSON, progress bars) is loaded on first use, and the answer and its
# footer are plain text written with print().
@functools.cache
def _console(stderr: bool) -> Console:
    from rich.console import Console

    return Console(stderr=stderr, highlight=False, soft_wrap=True)


class _LazyConsole:
    def __init__(self, stderr: bool) -> None:
        self.stderr = stderr

    def __getattr__(self, name: str) -> Any:
        return getattr(_console(self.stderr), name)


out = _LazyConsole(stderr=False)
err = _LazyConsole(stderr=True)


def _say(text: str = "") -> None:
    """A line of plain text on stdout, exactly as given (no markup, no emoji codes)."""
    print(text, flush=True)


class _Spinner:
    """The waiting line on stderr, shown from the first progress report on: a warm answer comes
    before the first report (about a second), and then rich is never imported."""

    def __init__(self) -> None:
        self.status: Status | None = None

    def update(self, text: str) -> None:
        if self.status is None:
            self.status = _console(True).status(text, spinner="dots")
            self.status.start()
        else:
            self.status.update(text)

    def stop(self) -> None:
        if self.status is not None:
            self.status.stop()


def _fail(message: str, code: int = 1) -> SystemExit:
    """`raise _fail(...)`: one line on stderr, then exit with `code`."""
    print(f"joulebot: {message}", file=sys.stderr, flush=True)
    return SystemExit(code)


def _cli_user() -> str:
    """The terminal user is the OS account: its numeric id, which the environment cannot change ($LOGNAME can)."""
    return str(os.getuid())


@contextlib.contextmanager
def _history_errors() -> Iterator[None]:
    """A history database that cannot be opened: one line naming DATABASE_URL, exit 2."""
    from joulebot.history import HistoryUnavailable

    try:
        yield
    except HistoryUnavailable as exc:
        raise _fail(f"DATABASE_URL: {exc}", 2) from None


def _history(settings: Settings):
    """The history store for a command that reads it."""
    from joulebot.history import open_history

    with _history_errors():
        return open_history(settings.sqlalchemy_url, settings.redact)


def _requests(
    settings: Settings, models: list[str | None], prompt: str, units: Units | None, box: str | None = None
) -> list[Request]:
    """Validated Requests with their box chosen (all on one box); exit 2 on bad input."""
    from joulebot.queueing.catalog import catalog_for_front_end
    from joulebot.queueing.client import JobError, NoBox, QueueClient

    catalog = catalog_for_front_end(settings)
    try:
        requests = [
            build_request(settings, catalog, platform="cli", user_id=_cli_user(), prompt=prompt, model=m, units=units)
            for m in models
        ]
        return QueueClient(settings).route(requests, box)
    except (InputError, NoBox) as exc:
        raise _fail(str(exc), 2) from None
    except JobError as exc:
        raise _fail(str(exc)) from None


def _follow_streaming(client, job, spinner: _Spinner) -> Result:
    """Wait for one job, printing its answer as the worker publishes it; the rest once it is done."""
    printed = ""
    while (result := client.poll(job, 1)) is None:
        partial = client.partial(job.id) or ""
        if len(partial) > len(printed) and partial.startswith(printed):
            if not printed:
                spinner.stop()
            print(partial[len(printed) :], end="", flush=True)
            printed = partial
        elif not printed:
            spinner.update(status_text(client.progress(job)))
    spinner.stop()
    _say(result.answer[len(printed) :] if result.answer.startswith(printed) else "\n" + result.answer)
    return result


def _run(settings: Settings, requests: list[Request], quiet: bool, stream: bool = False) -> list[Result]:
    """Queue the requests (in order, on the same worker) and wait for all Results.

    With `stream` (one request), its answer is printed as it is generated.
    Ctrl-C at any point cancels what has not started (nothing recorded) and leaves a
    running answer to finish and be stored.
    """
    from joulebot.queueing.client import JobError, QueueClient, QueueUnavailable

    client = QueueClient(settings)
    jobs = []
    results: list[Result] = []
    try:
        for request in requests:
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})  # no Ctrl-C between queueing and noting it
            try:
                jobs.append(client.submit(request))
            finally:
                signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
        spinner = _Spinner()
        try:
            if stream and len(jobs) == 1:
                return [_follow_streaming(client, jobs[0], spinner)]
            for number, job in enumerate(jobs, start=1):
                label = f"[{number}/{len(jobs)}] " if len(jobs) > 1 else ""
                show = None if quiet else (lambda p, label=label: spinner.update(f"{label}{status_text(p)}"))
                results.append(client.wait(job, show))
        finally:
            spinner.stop()
    except QueueUnavailable as exc:
        if not jobs:  # nothing was queued
            raise _fail(str(exc)) from None
        raise _fail("the queue went away while waiting; your answer may still be stored: joulebot history") from None
    except JobError as exc:
        raise _fail(str(exc)) from None
    except KeyboardInterrupt:
        try:
            cancelled = [client.cancel(job) for job in jobs[len(results) :]]  # every one, not just up to a running one
        except QueueUnavailable:
            raise _fail("stopped waiting; the queue does not answer, so nothing could be cancelled", 130) from None
        if all(cancelled):
            raise _fail("cancelled before it ran; nothing was recorded", 130) from None
        raise _fail("stopped waiting; the answer is still being made and will be in `joulebot history`", 130) from None
    return results


def _continuing(settings: Settings, request: Request, continue_last: bool, system: str | None) -> Request:
    """The request with its system prompt and, with --continue, your last conversation before it."""
    from joulebot.chat.context import Context

    context = Context()
    if continue_last:
        store = _history(settings)
        last = store.recent("cli", _cli_user(), 1)
        thread = store.thread(last[0].id) if last and last[0].id is not None else []
        if not thread:
            print("joulebot: no earlier exchange to continue; this starts a new conversation", file=sys.stderr)
        else:
            context = Context.after(thread)
    if system is not None and len(system) > settings.max_prompt_chars:
        raise _fail(f"the system prompt has {len(system)} characters; the maximum is {settings.max_prompt_chars}", 2)
    return context.apply(request, system if system is not None else (settings.system_prompt or None))


def ask(
    prompt: str,
    model: str | None,
    units: Units | None,
    as_json: bool,
    box: str | None,
    continue_last: bool,
    system: str | None,
    no_stream: bool,
) -> None:
    """Ask one model; print the answer (as it is generated) and what it cost."""
    settings = get_settings()
    (request,) = _requests(settings, [model], prompt, units, box)
    request = _continuing(settings, request, continue_last, system)
    stream = not (as_json or no_stream)
    request.stream = stream
    (result,) = _run(settings, [request], quiet=as_json, stream=stream)
    if as_json:
        out.print_json(result.model_dump_json())
        return
    if not stream:
        _say(result.answer)
    _say()
    _say(footer(result, public_url=settings.public_url))


def compare(model_a: str, model_b: str, prompt: str, units: Units | None, as_json: bool, box: str | None) -> None:
    """Ask two models the same thing, one after the other on the same box (so the ratio is fair)."""
    settings = get_settings()
    requests = _requests(settings, [model_a, model_b], prompt, units, box)
    a, b = _run(settings, requests, quiet=as_json)
    if as_json:
        out.print_json(json.dumps({"a": a.model_dump(mode="json"), "b": b.model_dump(mode="json")}))
        return
    for tag, result in (("A", a), ("B", b)):
        _say(f"── {tag}: {result.model} ──")
        _say(result.answer)
        _say()
        _say(footer(result, public_url=settings.public_url))
        _say()
    _say(energy_ratio(a, b))


def boxes(as_json: bool) -> None:
    """Every measurement box, alive or lately seen: zone, intensity, meters, models, queue and state."""
    import redis

    from joulebot.chat.boxes import box_lines
    from joulebot.queueing import connection as conn
    from joulebot.queueing.fleet import Fleet

    settings = get_settings()
    connection = conn.connect(settings, retries=0)
    try:
        views = Fleet(connection, settings.worker_lost_after_s).boxes() if conn.is_up(connection) else []
    except (redis.ConnectionError, redis.TimeoutError) as exc:
        raise _fail(f"the queue is unavailable ({conn.describe(settings)}): {type(exc).__name__}") from None
    if as_json:
        out.print_json(json.dumps([v.as_json() for v in views]))
        return
    if not views:
        where = (
            "the embedded box starts on the first question" if settings.embedded_redis else "start `joulebot worker`"
        )
        out.print(f"no box has announced itself yet ({where})", markup=False)
        return
    for line in box_lines(views, brief=False):
        out.print(line, markup=False)


def models() -> None:
    """List the models that can be asked here, and the ones that cannot (with why)."""
    from joulebot.queueing.catalog import catalog_for_front_end

    settings = get_settings()
    catalog = catalog_for_front_end(settings)
    for entry in catalog.available():
        default = " (default)" if entry.name == settings.default_model else ""
        out.print(f"{entry.name}{default} · {entry.size_label()} · {entry.family} · {entry.description}", markup=False)
    unavailable = [o for o in catalog.offers if not o.available]
    if unavailable:
        out.print("\nnot available here:", markup=False)
        for offer in unavailable:
            out.print(f"  {offer.entry.name} · {offer.entry.size_label()} · {offer.reason}", markup=False)


def models_pull(name: str) -> None:
    """Download a model onto this box's Ollama server (admin)."""
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

    from joulebot.models import RunnerError
    from joulebot.models.catalog import static_entries
    from joulebot.models.inventory import ollama_runner
    from joulebot.queueing.catalog import republish_catalog

    settings = get_settings()
    runner = ollama_runner(settings)
    if runner is None:
        raise _fail("OLLAMA_HOST is not set: the embedded model needs no pull", 2)
    wanted = name.strip().lower()
    entry = next((e for e in static_entries() if wanted in {n.lower() for n in e.names()}), None)
    if entry is not None and entry.runner != "ollama":
        raise _fail(f"{entry.name} is embedded: nothing to pull", 2)
    if entry is not None and entry.parameters_b > settings.max_model_params_b:
        limit = settings.max_model_params_b
        raise _fail(f"{entry.name} has {entry.size_label()} parameters; this box runs models up to {limit:g}B", 2)
    tag = entry.ollama_tag if entry and entry.ollama_tag else name
    columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn())
    with Progress(*columns, console=_console(True)) as progress:
        task = progress.add_task(f"pulling {tag}", total=None)

        def show(status: str, completed: int | None, total: int | None) -> None:
            progress.update(task, description=f"{tag}: {status}", completed=completed or 0, total=total)

        try:
            runner.pull(tag, show)
        except RunnerError as exc:
            raise _fail(str(exc)) from None
    republish_catalog(settings)
    out.print(f"pulled {tag}", markup=False)


def carbon() -> None:
    """Show the grid zone, its current carbon intensity and where the figure comes from."""
    from joulebot.carbon import Embodied, IntensityProvider

    settings = get_settings()
    intensity = IntensityProvider.from_settings(settings).current()
    embodied = Embodied.from_settings(settings)
    out.print(f"zone       {intensity.zone}", markup=False)
    out.print(f"intensity  {intensity.g_per_kwh:g} gCO2eq/kWh ({intensity.provenance})", markup=False)
    out.print(f"source     {intensity.label()}", markup=False)
    out.print(
        f"embodied   {embodied.source()} over {settings.embodied_lifespan_years:g} years"
        f" × share {settings.embodied_resource_share:g} = {sig(embodied.share_g(3600))} g per hour of use",
        markup=False,
    )


def history(limit: int, page: int, as_json: bool, as_csv: bool, forget: str | None) -> None:
    """Show your last exchanges, newest first (or export them, or forget a user)."""
    store = _history(get_settings())
    if forget:
        platform, _, user_id = forget.rpartition(":")
        n = store.forget(platform or "cli", user_id)
        out.print(f"forgot {n} exchanges of {platform or 'cli'}:{user_id} (their measurements stay)", markup=False)
        return
    if as_csv:
        rows = store.export("cli", _cli_user())
        writer = csv.DictWriter(sys.stdout, fieldnames=list(rows[0]) if rows else ["id"])
        writer.writeheader()
        writer.writerows(rows)
        return
    rows = store.recent("cli", _cli_user(), limit, offset=(page - 1) * limit)
    if as_json:
        out.print_json(json.dumps([row.result for row in rows]))
        return
    if not rows:
        out.print('no exchanges yet: try joulebot ask "What is a joule?"', markup=False)
    for row in rows:
        result = Result.model_validate(row.result)
        when = row.started_at.strftime("%Y-%m-%d %H:%M")
        out.print(f"#{row.id} {when} · {row.model} · {row.category} · {row.prompt[:60]}", markup=False)
        out.print(f"   {footer(result).replace(chr(10), chr(10) + '   ')}", markup=False)


def stats(as_csv: bool, box: str | None) -> None:
    """Which model is greener for which kind of task, per box: mean SCI and energy per answer, and accuracy where
    scored."""
    from joulebot.campaign.runner import csv_row
    from joulebot.categories import accuracy

    store = _history(get_settings())
    if box is not None and box not in (known := store.boxes()):
        raise _fail(f"no measurements from box {box!r}; boxes in history: {', '.join(known) or 'none'}", 2)
    rows = store.category_stats(box=box)
    continued = sum(r.answers for r in store.category_stats(box=box, continued=True))
    if as_csv:
        writer = csv.DictWriter(sys.stdout, fieldnames=list(csv_row(rows[0])) if rows else ["model"])
        writer.writeheader()
        writer.writerows(csv_row(r) for r in rows)
        return
    if not rows:
        out.print("no measurements yet", markup=False)
        return
    overall, _ = accuracy()
    shown = ["sci", "energy"] + (["accuracy", "energy-per-correct"] if any(r.scored for r in rows) else [])
    _tables_per_box(rows, shown)
    if continued:
        _say(
            f"{continued} later turns of conversations are not in these tables: they carry the"
            " conversation as context and cost more per answer"
        )
    out.print(
        f"categories come from a keyword classifier ({overall:.0%} right on the shipped prompt sets)", markup=False
    )


def _tables_per_box(rows: list, metrics: list[str]) -> None:
    """The model × task tables of each box on its own (a GPU box and a CPU box are not one population),
    then where the energy figures come from."""
    from joulebot.campaign.runner import METRICS, by_box, sources_line, table

    boxes = by_box(rows)
    for number, (box, box_rows) in enumerate(boxes.items()):
        if len(boxes) > 1:
            out.print(("\n" if number else "") + f"── box {box} ──", markup=False)
        for index, name in enumerate(metrics):
            title, cell = METRICS[name]
            out.print(("\n" if index or number else "") + f"{title}:", markup=False)
            out.print(table(box_rows, cell), markup=False)
    out.print(f"\n{sources_line(rows)}; figures of different boxes or energy sources are never compared", markup=False)


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
    """Run the shipped prompt sets through the real queue and worker, score the answers; print model × task tables
    (per box)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from joulebot.campaign.references import ReferenceError, load_references
    from joulebot.campaign.runner import (
        HEATMAP_VALUES,
        heatmap,
        plan,
        run_bench,
        write_answers_csv,
        write_csv,
    )

    if heatmap_of not in HEATMAP_VALUES:
        raise _fail(f"unknown heatmap {heatmap_of!r} (known: {', '.join(HEATMAP_VALUES)})", 2)
    settings = get_settings()
    chosen = [b.strip() for b in boxes.split(",") if b.strip()] if boxes else None
    try:
        checked = load_references(references)  # before anything is queued: a bad file costs no energy
        requests = plan(settings, models.split(","), [c.strip() for c in categories.split(",")], n, run, chosen)
    except (InputError, ReferenceError) as exc:
        raise _fail(str(exc), 2) from None
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=_console(True)) as progress:
        task = progress.add_task(f"bench {run}", total=len(requests))
        done_before = len(requests)

        def tick(request_id: str) -> None:
            progress.update(task, advance=1, description=request_id.removeprefix(f"bench-{run}-"))

        from joulebot.queueing.client import JobError

        try:
            with _history_errors():
                outcome = run_bench(settings, requests, run, checked, tick, rescore)
        except JobError as exc:
            raise _fail(str(exc)) from None
        progress.update(task, completed=done_before)
    out.print(
        f"{outcome.ran} answers measured, {outcome.skipped} already measured, {len(outcome.failed)} failed",
        markup=False,
    )
    scores = outcome.scores
    out.print(
        f"{scores.correct} correct, {scores.wrong} wrong, {scores.unscored} unscored (newly checked)", markup=False
    )
    for failure in outcome.failed:
        err.print(f"  failed: {failure}", markup=False)
    if not outcome.stats:
        raise _fail("no measurements to show")
    _tables_per_box(outcome.stats, ["accuracy", "energy", "energy-per-correct", "sci", "sci-per-correct"])
    out_dir.mkdir(parents=True, exist_ok=True)
    write_csv(outcome.stats, out_dir / f"{run}.csv")
    write_answers_csv(outcome.answers, out_dir / f"{run}-answers.csv")
    drawn = heatmap(outcome.stats, out_dir / f"{run}.png", heatmap_of)
    written = f"{out_dir / f'{run}.csv'}, {out_dir / f'{run}-answers.csv'}"
    out.print(
        f"\nwrote {written}"
        + (
            f" and {out_dir / f'{run}.png'} ({heatmap_of})"
            if drawn
            else " (pip install 'joulebot[bench]' for the heatmap)"
        ),
        markup=False,
    )


def worker(idle_exit: int | None, burst: bool) -> None:
    """Run the measurement worker (one per metered box)."""
    from joulebot.config.logs import configure_logging
    from joulebot.worker.measurement_worker import WorkerExit, serve

    settings = get_settings()
    configure_logging(settings)
    try:
        serve(settings, idle_exit_s=idle_exit, burst=burst)
    except WorkerExit as exc:
        raise _fail(exc.reason, exc.code if isinstance(exc.code, int) else 1) from None


def stop() -> None:
    """Stop the embedded worker and Redis (they also stop by themselves when idle)."""
    from joulebot.queueing.embedded import stop_embedded_stack

    settings = get_settings()
    if not settings.embedded_redis:
        raise _fail("REDIS_URL is set: stop the worker with your process manager", 2)
    graceful = stop_embedded_stack(settings)
    out.print("stopped" if graceful else "stopped (the worker had to be killed)")


def web(host: str | None, port: int | None) -> None:
    """Serve the read-only dashboard and /metrics from history and Redis."""
    import socket

    import uvicorn

    from joulebot.web.app import create_app

    settings = get_settings()
    host, port = host or settings.web_host, port or settings.web_port
    try:  # one clear line instead of uvicorn's traceback-free but noisy bind failure
        with socket.create_server((host, port)):
            pass
    except OSError as exc:
        raise _fail(f"cannot listen on {host}:{port}: {exc.strerror or exc}", 2) from None
    err.print(f"dashboard on http://{host}:{port}/ (read-only; Ctrl-C stops it)", markup=False)
    # no access log: a private answer link's token is in its path, and secrets never reach a log
    uvicorn.run(create_app(settings), host=host, port=port, log_level="warning", access_log=False)


def meters() -> None:
    """Which meters this box has, what they read at idle, temperatures (run it on the box)."""
    from joulebot.metering.detect import MeterConfigError
    from joulebot.metering.doctor import report

    settings = get_settings()
    try:
        with err.status(f"measuring idle power for {settings.idle_baseline_s:g} s"):
            text = report(settings)
    except MeterConfigError as exc:
        raise _fail(str(exc), 2) from None
    out.print(text, markup=False)


def meter_read(source: str, seconds: float, port: str | None, interval: float | None) -> None:
    """Read one meter for a while; print its average power and energy."""
    from joulebot.metering.base import MeterAbsent
    from joulebot.metering.doctor import build_meter, read_for

    settings = get_settings()
    overrides: dict[str, object] = {"mcp39f511n_port": port} if port else {}
    if interval:
        overrides["meter_interval_s"] = interval
    try:
        meter = build_meter(settings.model_copy(update=overrides), source.lower())
    except MeterAbsent as exc:
        raise _fail(str(exc), 2) from None
    with err.status("reading") as status:
        label = meter.describe()
        reading, polled = read_for(meter, seconds, lambda t: status.update(f"reading {label}: {t:.1f}/{seconds:g} s"))
    if reading.joules is None:
        raise _fail(f"no reading: {reading.error}")
    kind = "measured" if reading.measured else "estimated"
    band = f" ± {reading.uncertainty_j:.3f} J" if reading.uncertainty_j is not None else ""
    out.print(
        f"{reading.source}: {reading.watts:.3f} W average, {reading.joules:.3f} J{band} over {reading.seconds:.3f} s"
        f" ({reading.samples} samples, {reading.scope}, {kind})",
        markup=False,
    )
    if reading.method:
        out.print(f"  how: {reading.method}", markup=False)
    if reading.note:
        out.print(f"  note: {reading.note}", markup=False)
    if reading.short_window:
        update_ms = (reading.update_s or 0) * 1000
        out.print(f"  short window: under 10 of the meter's {update_ms:g} ms updates", markup=False)
    if polled is not None and polled.joules is not None and reading.joules:
        off = (polled.joules - reading.joules) / reading.joules * 100
        out.print(
            f"  same window, {polled.method}: {polled.watts:.3f} W average, {polled.joules:.3f} J"
            f" ({off:+.1f} % against the energy counter; {polled.samples} samples)",
            markup=False,
        )
    elif polled is not None:
        out.print(f"  instant power over the same window: no reading ({polled.error})", markup=False)


def meter_simulate(watts: float, power_range: int, mains_hz: float) -> None:
    """Run a simulated MCP39F511N on a pseudo-terminal until Ctrl-C (for trying the driver).

    Like the chip, its power register averages over 2^N mains cycles (N: factory 4, writable)."""
    import time

    from joulebot.metering.mcp39f511n_sim import SimulatedMCP39F511N

    with SimulatedMCP39F511N(power_w=watts, power_range=power_range, mains_hz=mains_hz) as sim:
        out.print(f"simulated MCP39F511N at {sim.port} ({watts:g} W); Ctrl-C to stop", markup=False)
        try:
            while True:
                time.sleep(1)
        except KeyboardInterrupt:
            pass


def telegram() -> None:
    """Run the Telegram bot (long polling, or a webhook with TELEGRAM_WEBHOOK_URL)."""
    from joulebot.chat.telegram_bot import TelegramBot
    from joulebot.config.logs import configure_logging

    settings = get_settings()
    if not settings.telegram_bot_token.get_secret_value():
        raise _fail("TELEGRAM_BOT_TOKEN is not set (ask @BotFather for one)", 2)
    configure_logging(settings)
    with _history_errors():
        bot = TelegramBot(settings)
    bot.run()


def discord(sync: bool) -> None:
    """Run the Discord bot (slash commands /ask, /compare, /model, /models, /units, /history, /forget, /stats)."""
    from joulebot.chat.discord_bot import run
    from joulebot.config.logs import configure_logging

    settings = get_settings()
    if not settings.discord_bot_token.get_secret_value():
        raise _fail("DISCORD_BOT_TOKEN is not set (create an application at discord.com/developers)", 2)
    configure_logging(settings)
    with _history_errors():
        run(settings, sync=sync)


# The command line: argparse, built explicitly (one block per command, each naming the function that
# runs it). It is the standard library's, so a warm `joulebot ask` pays no CLI framework's import.


class _Range:
    """An argparse type: an int or float from `low` up to `high` (None: no upper bound)."""

    def __init__(self, kind: type[int] | type[float], low: float, high: float | None = None) -> None:
        self.kind, self.low, self.high = kind, low, high
        self.__name__ = kind.__name__  # argparse's "invalid int value: 'x'" names it

    def __call__(self, text: str) -> float:
        value = self.kind(text)
        if not (self.low <= value and (self.high is None or value <= self.high)):  # NaN is neither
            raise argparse.ArgumentTypeError(f"must be {self}, not {text}")
        return value

    def __str__(self) -> str:
        return f"between {self.low:g} and {self.high:g}" if self.high is not None else f"at least {self.low:g}"


class _HelpFormatter(argparse.HelpFormatter):
    """Each option's help with its range and default; a command's description keeps its paragraphs."""

    def _get_help_string(self, action: argparse.Action) -> str:
        notes = [str(action.type)] if isinstance(action.type, _Range) else []
        help_text = action.help or ""
        default = action.default
        shown = default is not None and default is not False and default != argparse.SUPPRESS
        if action.option_strings and shown and "%(default)" not in help_text:
            notes.append("default: %(default)s")
        return f"{help_text} [{'; '.join(notes)}]" if notes else help_text

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        import textwrap

        fill = functools.partial(textwrap.fill, width=width, initial_indent=indent, subsequent_indent=indent)
        return "\n\n".join(fill(" ".join(paragraph.split())) for paragraph in text.split("\n\n"))


class _Parser(argparse.ArgumentParser):
    """Only whole option names (as before: no `--mod` for `--model`); a usage error is one line, exit 2."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        kwargs.setdefault("formatter_class", _HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see `{self.prog} --help`)\n")


def _command(commands: Any, name: str, handler: Callable[..., None], summary: str | None = None) -> _Parser:
    """A command's parser: its docstring is its description (and first paragraph, its line in the list)."""
    doc = handler.__doc__ or ""
    summary = summary or " ".join(doc.split("\n\n")[0].split())
    parser: _Parser = commands.add_parser(name, help=summary, description=doc)
    parser.set_defaults(handler=handler)
    return parser


def _units_json_box(parser: _Parser) -> None:
    parser.add_argument("--units", choices=get_args(Units), help="joules: energy; watts: average power and duration")
    parser.add_argument("--json", dest="as_json", action="store_true", help="print the whole Result as JSON")
    parser.add_argument("--box", help="run on this box (see `joulebot boxes`)")


def _parser() -> _Parser:
    """Every command, subcommand, argument and option of `joulebot`."""
    parser = _Parser(prog="joulebot", description=(__doc__ or "").splitlines()[0])
    parser.set_defaults(handler=parser)  # no command: the help, exit 2
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")

    p = _command(commands, "ask", ask)
    p.add_argument("prompt", help="what to ask")
    p.add_argument("--model", "-m", help="model name (see `joulebot models`)")
    _units_json_box(p)
    p.add_argument(
        "--continue",
        "-c",
        dest="continue_last",
        action="store_true",
        help="continue your last conversation (it becomes the context)",
    )
    p.add_argument("--system", help="system prompt (default: SYSTEM_PROMPT)")
    p.add_argument("--no-stream", action="store_true", help="print the answer only once it is complete")

    p = _command(commands, "compare", compare)
    p.add_argument("model_a", help="first model")
    p.add_argument("model_b", help="second model")
    p.add_argument("prompt", help="what to ask both")
    _units_json_box(p)

    p = _command(commands, "boxes", boxes)
    p.add_argument("--json", dest="as_json", action="store_true", help="print every box as JSON")

    p = _command(commands, "models", models, summary="The models this box can run (and, for admins, pulling more).")
    models_commands = p.add_subparsers(title="commands", metavar="COMMAND")  # none: the list
    p = _command(models_commands, "pull", models_pull)
    p.add_argument("name", help="catalog name, alias or Ollama tag")

    _command(commands, "carbon", carbon)

    p = _command(commands, "history", history)
    p.add_argument("--limit", "-n", type=_Range(int, 1), default=10, help="how many per page")
    p.add_argument("--page", "-p", type=_Range(int, 1), default=1, help="1: the newest")
    p.add_argument("--json", dest="as_json", action="store_true", help="print the page's Results as JSON")
    p.add_argument("--csv", dest="as_csv", action="store_true", help="all your exchanges as CSV")
    p.add_argument("--forget", help="delete a user's prompts and answers: PLATFORM:USER_ID")

    p = _command(commands, "stats", stats)
    p.add_argument("--csv", dest="as_csv", action="store_true", help="per model, category, box and meter, as CSV")
    p.add_argument("--box", help="only this box (default: one set of tables per box)")

    p = _command(commands, "bench", bench)
    p.add_argument("--models", required=True, help="comma-separated models")
    p.add_argument("--categories", default="code,math,questions,sql,translation", help="comma-separated categories")
    p.add_argument("--n", type=_Range(int, 1, 50), default=50, help="prompts per category")
    p.add_argument("--run", default="default", help="run name: the same name resumes an interrupted run")
    p.add_argument(
        "--out",
        dest="out_dir",
        metavar="OUT",
        type=Path,
        default=Path("bench-out"),
        help="where the CSVs and the heatmap go",
    )
    p.add_argument(
        "--references", type=Path, help="folder of <category>.jsonl reference files (default: the shipped ones)"
    )
    p.add_argument(
        "--heatmap",
        dest="heatmap_of",
        metavar="HEATMAP",
        default="sci",
        help="accuracy, energy, energy-per-correct, sci or sci-per-correct",
    )
    p.add_argument(
        "--rescore",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="check the run's answers again (after changing references)",
    )
    p.add_argument("--boxes", help="comma-separated boxes: the whole run on each")

    p = _command(commands, "worker", worker)
    p.add_argument("--idle-exit", type=int, help="exit after this many idle seconds")
    p.add_argument("--burst", action=argparse.BooleanOptionalAction, default=False, help="exit when the queue is empty")

    _command(commands, "stop", stop)

    p = _command(commands, "web", web)
    p.add_argument("--host", help="address to listen on (WEB_HOST; default 127.0.0.1)")
    p.add_argument("--port", type=_Range(int, 1, 65535), help="port (WEB_PORT; default 8080)")

    _command(commands, "meters", meters)

    meter = commands.add_parser(
        "meter",
        help="Check one meter, or simulate a wall meter.",
        description="Check one meter, or simulate a wall meter.",
    )
    meter.set_defaults(handler=meter)  # no subcommand: its help, exit 2
    meter_commands = meter.add_subparsers(title="commands", metavar="COMMAND")
    p = _command(meter_commands, "read", meter_read)
    p.add_argument("--source", required=True, help="mcp39f511n, rapl, nvml or estimate")
    p.add_argument("--seconds", type=_Range(float, 0.1), default=10.0, help="window length")
    p.add_argument("--port", help="serial port of the MCP39F511N")
    p.add_argument("--interval", type=float, help="sampling interval in seconds (sampled meters)")
    p = _command(meter_commands, "simulate", meter_simulate)
    p.add_argument("--watts", type=float, default=100.0, help="constant active power to report")
    p.add_argument(
        "--range", dest="power_range", metavar="RANGE", type=int, default=19, help="power range register value"
    )
    p.add_argument("--mains-hz", type=float, default=50.0, help="mains frequency of the simulated supply")

    _command(commands, "telegram", telegram)

    p = _command(commands, "discord", discord)
    p.add_argument("--sync", action="store_true", help="register the slash commands now (else only on change)")
    return parser


def main(argv: list[str] | None = None) -> None:
    """The `joulebot` command. A setting that cannot work is one line naming it, exit 2, wherever it shows."""
    from joulebot.config.files import private_dir

    try:
        settings = get_settings()  # every setting, before any command runs
        if settings.data_dir.exists():
            private_dir(settings.data_dir)  # one made by an older joulebot may be 0755 with 0644 files
        args = vars(_parser().parse_args(argv))
        handler = args.pop("handler")
        if isinstance(handler, argparse.ArgumentParser):  # `joulebot` or `joulebot meter` alone
            handler.print_help()
            sys.exit(2)
        handler(**args)
    except SettingsError as exc:
        err.print(f"joulebot: {exc}", markup=False)
        sys.exit(2)
    except KeyboardInterrupt:  # a command that does not handle Ctrl-C itself: no traceback
        print("\nAborted!", file=sys.stderr)
        sys.exit(1)
    except BrokenPipeError:  # `joulebot history --csv | head`: the reader left; nothing more to say
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(1)


if __name__ == "__main__":
    main()
