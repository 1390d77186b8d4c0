"""The measurement station: what the worker holds for the life of its process.

Runners keep models loaded, the measurement box keeps its idle baseline, the
history store keeps its engine. `run()` turns one Request into one Result.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from datetime import UTC, datetime
from typing import Protocol, TypeVar

import redis
from rq.timeouts import BaseTimeoutException

from joulebot.carbon import Embodied, IntensityProvider, carbon_for
from joulebot.categories import classify
from joulebot.config import Settings
from joulebot.exchange import GENERATING, Request, Result
from joulebot.history import HistoryStore, open_history
from joulebot.metering.answer_energy import MeasurementBox
from joulebot.metering.detect import detect_meters
from joulebot.metering.reading import Energy, IdleBaseline
from joulebot.metering.temperature import wait_until_cool
from joulebot.models import Catalog, ModelEntry, Runner, RunnerError
from joulebot.models.inventory import current_catalog, ollama_runner
from joulebot.models.llamacpp_runner import LlamaCppRunner
from joulebot.models.runner import RELOAD_S, TextSink
from joulebot.queueing.fleet import BoxModel, BoxProfile, MeanEnergy, MeterScope
from joulebot.worker.context import fit
from joulebot.worker.history_calls import HistoryCalls, HistoryTimeout
from joulebot.worker.outbox import HistoryOutbox
from joulebot.worker.phases import not_split, phase_timing

log = logging.getLogger(__name__)

WARMUP_PROMPT = [{"role": "user", "content": "Say hello."}]  # chat messages, as for every answer
WARMUP_TOKENS = 8
MEANS_EVERY_S = 5.0  # see Station.refresh_means_soon
DELIVERY_MARGIN_S = 1.0  # of a job's time, kept for sending its Result once history is done

StageCallback = Callable[[str], None]
T = TypeVar("T")


def _on_a_thread(make: Callable[[], T]) -> Future[T]:
    """`make()` run on a thread of its own; its value, or its exception, from the future."""
    future: Future[T] = Future()

    def run() -> None:
        try:
            future.set_result(make())
        except BaseException as exc:  # handed to whoever waits for the value
            future.set_exception(exc)

    threading.Thread(target=run, name="joulebot-open", daemon=True).start()
    return future


def _done(value: T) -> Future[T]:
    future: Future[T] = Future()
    future.set_result(value)
    return future


class IdleKeeping(Protocol):
    """Where the worker keeps idle baselines between starts (`joulebot.worker.idle.IdleKeeper`)."""

    def restore(self) -> list[IdleBaseline]: ...

    def save(self) -> None: ...


class Station:
    def __init__(self, settings: Settings, history: HistoryStore | None = None) -> None:
        self.settings = settings
        self.detection = detect_meters(settings)
        self.box = MeasurementBox(self.detection.meters, settings.sysfs_root, self.detection.refused)
        self.ollama = ollama_runner(settings)
        self.runners: dict[str, Runner] = {"llamacpp": LlamaCppRunner(threads=settings.llama_threads)}
        if self.ollama is not None:
            self.runners["ollama"] = self.ollama
        self.on_catalog: Callable[[Catalog], None] = lambda _: None  # the worker publishes it
        self.catalog = current_catalog(settings, self.ollama)
        self.catalog_at = time.monotonic()
        self._retention_at = float("-inf")
        self.outbox: HistoryOutbox | None = None  # the worker sets it (it holds the Redis connection)
        # Opened (a fresh database: migrated, ~0.25 s) on a thread while `warm_up` loads the model,
        # whose C code leaves the GIL free; the first use of `history` waits for it, and a database
        # that cannot be opened raises there, before any job is taken.
        self._history = (
            _on_a_thread(lambda: open_history(settings.sqlalchemy_url, settings.redact, settings.history_timeout_s))
            if history is None
            else _done(history)
        )
        self.history_calls = HistoryCalls(self._history, settings.history_timeout_s)  # each against a deadline
        self.intensity = IntensityProvider.from_settings(settings)
        self.embodied = Embodied.from_settings(settings)
        # Without a keeper the idle baseline is measured in front of the first job, as a plain
        # station must; the worker sets one, which takes that measurement off the answer's path.
        self.idle_keeper: IdleKeeping | None = None
        self.warm: set[str] = set()  # models that had their warm-up generation since they were last loaded
        self.busy = threading.Lock()  # held by a job, or by an idle measurement: never both at once
        self.job_waiting = threading.Event()  # a job waits for `busy`
        self.last_job_end = time.monotonic()
        self.state = "starting"  # what the box does now, for its profile
        self.means: list[MeanEnergy] = []  # this box's measured means, read again after answers
        self._means_due = threading.Event()  # an answer was stored since the last read
        self._means_reader: threading.Thread | None = None

    @property
    def history(self) -> HistoryStore:
        return self._history.result()

    def profile(self) -> BoxProfile:
        """What the fleet's front ends need to route to this box (published by the heartbeat)."""
        intensity = self.intensity.current()  # cached by the provider: a live fetch every few minutes at most
        scope: MeterScope = "wall" if self.box.wall else "components" if self.box.components else "estimate"
        return BoxProfile(
            box=self.settings.box_name,
            queue=self.settings.queue_name,
            host=socket.gethostname(),
            pid=os.getpid(),
            zone=intensity.zone,
            intensity_g_per_kwh=intensity.g_per_kwh,
            intensity_provenance=intensity.provenance,
            intensity_label=intensity.model_copy(update={"age_s": None}).label(),  # stable between fetches
            meter_scope=scope,
            meters=[m.describe() for m in self.box.meters],
            models=[
                BoxModel(name=e.name, size=e.size_label(), parameters_b=e.parameters_b, vision=e.vision)
                for e in self.catalog.available()
            ],
            means=self.means,
            embodied_g_per_s=self.embodied.share_g(1.0),
        )

    def refresh_means_soon(self) -> None:
        """Read the means again on a thread of their own: not on the answer's path (the query costs
        more than the insert), and never on the heartbeat's (a slow database must not delay the
        box lock's renewal). At most one read per MEANS_EVERY_S: routing compares means of many
        answers, so a few seconds' lag changes nothing, and a read per answer would take a core
        from a busy box."""
        self._means_due.set()
        if self._means_reader is None or not self._means_reader.is_alive():
            self._means_reader = threading.Thread(target=self._read_means, name="joulebot-means", daemon=True)
            self._means_reader.start()

    def _read_means(self) -> None:
        while True:
            self._means_due.wait()
            self._means_due.clear()
            self.refresh_means()
            time.sleep(MEANS_EVERY_S)  # the answers stored meanwhile are read together

    def refresh_means(self) -> None:
        try:
            settings = self.settings_now()
            rows = self.history_calls.call(lambda history: history.box_means(self.settings.box_name, settings))
            self.means = [MeanEnergy.model_validate(row) for row in rows]
        except Exception as exc:  # history down: keep the last known means
            log.info("could not read this box's means: %s", type(exc).__name__)

    def settings_now(self) -> dict[str, str]:
        """Each model offered here and its generation settings now (their tag): the statistics of its
        answers that describe it now are those of these settings."""
        available = [e for e in self.catalog.available() if e.runner in self.runners]
        return {e.name: self.runner_for(e).settings(e).tag() for e in available}

    def runner_for(self, entry: ModelEntry) -> Runner:
        return self.runners[entry.runner]

    def refresh_catalog(self, max_age_s: float = 60.0) -> Catalog:
        """The catalog, looked up again (and published) once it is older than `max_age_s`."""
        if time.monotonic() - self.catalog_at > max_age_s:
            self.catalog = current_catalog(self.settings, self.ollama)
            self.catalog_at = time.monotonic()
            self.on_catalog(self.catalog)
        return self.catalog

    def warm_up(self) -> None:
        """Load the default model and get the idle baseline (kept from before, or measured), before any job."""
        self.on_catalog(self.catalog)  # built a moment ago in __init__
        load_s = warmup_s = 0.0
        try:
            entry = self.catalog.resolve(self.settings.default_model)
            load_s = self.runner_for(entry).load(entry)
            warmup = self.warm_model(entry, load_s)
            warmup_s = warmup.seconds if warmup else 0.0
        except (LookupError, RunnerError) as exc:
            log.warning("default model not loaded: %s", exc)
            entry = None
        meters = ", ".join(m.describe() for m in self.box.meters)
        log.info("meters: %s; not used: %s", meters, self.detection.absent or "none")
        name = entry.name if entry else "no model"
        log.info("warm: %s loaded in %.2f s, warmed up in %.2f s", name, load_s, warmup_s)
        if self.idle_keeper is None:
            idle = self.measure_idle()
            log.info("idle %.2f W (%s, %.1f s)", idle.watts, idle.source, idle.seconds)
        elif kept := self.idle_keeper.restore():
            age = self.box.idle_age_s() or 0.0
            log.info("idle %.2f W (%s), kept from %.0f s ago", kept[0].watts, kept[0].source, age)
        else:
            log.info("idle: no baseline kept for this box and its meters; measured when no job runs")
        self.last_job_end = time.monotonic()  # the model load just used the CPU: let it settle
        _ = self.history  # opened meanwhile on its thread; one that cannot be opened raises here, before any job
        self.refresh_means()
        self.state = "idle"

    def measure_idle(self, give_way: bool = False) -> IdleBaseline:
        """Measure idle power now (no job may run meanwhile) and keep it for the next start.

        With `give_way` (a measurement nobody waits for), a job that arrives stops it at once
        (IdleInterrupted): the job does not wait seconds for a baseline it may not even need.
        """
        interrupt = self.job_waiting if give_way else None
        idle = self.box.measure_idle(self.settings.idle_baseline_s, self.settings.idle_settle_s, interrupt=interrupt)
        if self.idle_keeper is not None:
            self.idle_keeper.save()
        return idle

    def needs_warmup(self, entry: ModelEntry, load_s: float) -> bool:
        return entry.name not in self.warm or load_s > RELOAD_S

    def warm_model(self, entry: ModelEntry, load_s: float) -> Energy | None:
        """One short generation after a model load, before its first measured answer (first calls
        are slower: caches, allocations). Its energy is measured and returned, never folded in."""
        if not self.needs_warmup(entry, load_s):
            return None
        runner = self.runner_for(entry)
        _, energy = self.box.measure(lambda: runner.generate(entry, WARMUP_PROMPT, WARMUP_TOKENS))
        self.warm.add(entry.name)
        return energy

    def prepare(self, stage: StageCallback, deadline: float | None = None) -> bool:
        """Before a job: wait while the box is too hot, store what waits in the outbox, and refresh a
        stale idle baseline. False if the history database did not take what waited (it is down)."""
        cooled = 0.0
        if self.settings.cooldown_above_c is not None:
            cooled = wait_until_cool(
                self.box.temperatures,
                self.settings.cooldown_above_c,
                self.settings.cooldown_sleep_s,
                self.settings.cooldown_max_wait_s,
                on_wait=stage,
            )
        history_up = True
        if self.outbox is not None:
            try:
                history_up = self.outbox.drain(lambda result: self._call_history(lambda h: h.record(result), deadline))
            except redis.RedisError as exc:  # Redis restarting: what waits, waits for the next job
                log.info("outbox not drained: %s", type(exc).__name__)
        if history_up:
            self.apply_retention(deadline)
        age = self.box.idle_age_s()
        stale = age is not None and age > self.settings.idle_refresh_s  # a box too busy to refresh it quietly
        missing = age is None and self.idle_keeper is None  # else measured once no job runs
        if cooled or stale or missing:
            stage("measuring idle power")
            self.measure_idle()
        return history_up

    def _call_history(self, work: Callable[[HistoryStore], T], deadline: float | None) -> T:
        """A history call that ends in time for the answer to go out before `deadline` (monotonic)."""
        within = None if deadline is None else deadline - time.monotonic() - DELIVERY_MARGIN_S
        return self.history_calls.call(work, within)

    def run(
        self,
        request: Request,
        stage: StageCallback = lambda _: None,
        publish: Callable[[str], None] | None = None,
        deadline: float | None = None,
    ) -> Result:
        """One answer, measured; no idle measurement runs at the same time.

        `publish` receives the answer so far (if the request streams). `deadline` (monotonic): when
        the job's time is up; the history database gets only what is left of it, less a margin.
        """

        def staged(name: str) -> None:
            self.state = name
            stage(name)

        self.job_waiting.set()  # a background idle measurement holding `busy` gives way
        with self.busy:
            self.job_waiting.clear()
            try:
                return self._run(request, staged, publish, deadline)
            finally:
                self.last_job_end = time.monotonic()
                self.state = "idle"

    def _run(
        self, request: Request, stage: StageCallback, publish: Callable[[str], None] | None, deadline: float | None
    ) -> Result:
        try:
            entry = self.refresh_catalog().resolve(request.model)
        except LookupError:  # pulled or removed since the last look: look again before refusing
            entry = self.refresh_catalog(max_age_s=0).resolve(request.model)
        if request.images and not entry.vision:  # front ends refuse this first; a stale catalog can let it by
            raise RunnerError(self.catalog.blind(entry))
        unseen = request.earlier_images() if not entry.vision else 0  # a conversation moved on to a blind model
        if unseen:
            request = request.model_copy(update={"turns": [t.model_copy(update={"images": []}) for t in request.turns]})
        runner = self.runner_for(entry)
        if not runner.loaded(entry):  # each stage is a Redis round trip on the answer's path: only the real ones
            stage("loading model")
        load_s = runner.load(entry)  # outside the measured window, reported on its own
        if self.needs_warmup(entry, load_s):
            stage("warming up")
        warmup = self.warm_model(entry, load_s)  # likewise
        history_up = self.prepare(stage, deadline)
        window = min(runner.context_window(entry), self.settings.max_context_tokens)
        fitted = fit(  # before the window
            request, window, lambda m: runner.count_tokens(entry, m), lambda m: runner.token_bound(entry, m)
        )
        messages = fitted.messages
        interval = request.stream_interval_s or self.settings.stream_interval_s
        sink = TextSink(publish, interval) if publish and request.stream else None
        stage(GENERATING)
        started_at = datetime.now(UTC)
        generation, energy = self.box.measure(
            lambda: runner.generate(entry, messages, request.max_tokens, sink, request.sampling), timing=phase_timing
        )
        reload_s = generation.runner_stats.get("load_duration", 0.0)
        if reload_s > RELOAD_S:  # evicted and loaded again inside the window: not comparable, and said so
            phases = not_split(energy.phases, f"the window includes a model reload ({reload_s:.2f} s)")
            energy = energy.model_copy(update={"includes_reload": True, "reload_s": reload_s, "phases": phases})
        carbon = carbon_for(energy.total_j, energy.seconds, self.intensity.current(), self.embodied)
        result = Result(
            request=request.without_pixels(),
            answer=generation.text,
            model=entry.name,
            model_size=entry.size_label(),
            prompt_tokens=generation.prompt_tokens,
            completion_tokens=generation.completion_tokens,
            generation_s=generation.seconds,
            first_token_s=generation.first_token_s,
            finish_reason=generation.finish_reason,
            generation_settings=generation.settings.tag(),
            reasoning=generation.reasoning,
            runner_stats=generation.runner_stats,
            load_s=load_s,
            warmup_energy=warmup,
            energy=energy,
            carbon=carbon,
            box=self.settings.box_name,
            started_at=started_at,
            finished_at=datetime.now(UTC),
            category=request.category or classify(request.prompt),
            share_token=secrets.token_urlsafe(16),
            context_turns=len(request.turns) - fitted.dropped_turns,
            dropped_turns=fitted.dropped_turns,
            context_images=fitted.context_images,
            dropped_images=unseen + fitted.dropped_images,
            dropped_images_because=_why_unseen(entry, unseen, fitted.dropped_images),
        )
        self._store(result, history_up, deadline)
        return result

    def _store(self, result: Result, history_up: bool, deadline: float | None) -> None:
        """Record the exchange and its hint (a few ms: the status stays at "generating" meanwhile); a
        database that fails or does not answer in time leaves the Result in the outbox, and the answer goes
        out saying so. A database that just failed to take what waited is not asked again."""
        made = self.settings_now()
        made[result.model] = result.generation_settings
        source = result.energy.machine.source

        def record(history: HistoryStore) -> tuple[int, str | None, bool]:
            exchange_id = history.record(result)
            hint = None  # the hint compares answers to text questions: none under an answer that read images
            if not result.image_count:
                hint = history.greener_hint(
                    result.category, result.model, list(made), box=result.box, source=source, settings=made
                )
            asked = result.request
            first = result.carbon.intensity.zone_default and history.is_first_answer(
                exchange_id, asked.platform, asked.user_id
            )
            return exchange_id, hint, first

        try:
            if not history_up and self.outbox is not None:
                raise HistoryTimeout("the history database did not take the results that wait")
            result.exchange_id, result.hint, result.first_answer = self._call_history(record, deadline)
            self.refresh_means_soon()
        except BaseTimeoutException:  # the job's own time limit: never taken for a history error
            raise
        except Exception as exc:  # the answer still goes out; what happens to the record is said
            log.warning("could not store exchange %s: %s", result.request.id, type(exc).__name__)
            if self.outbox is not None:
                self.outbox.push(result)
                result.history_error = "history is unavailable: this exchange will be stored when it is back"
            else:
                result.history_error = f"not stored in history: {type(exc).__name__}"

    def apply_retention(self, deadline: float | None = None) -> None:
        if self.settings.history_retention_days > 0 and time.monotonic() - self._retention_at > 3600:
            self._retention_at = time.monotonic()
            days = self.settings.history_retention_days
            try:
                scrubbed = self._call_history(lambda history: history.scrub_older_than(days), deadline)
            except BaseTimeoutException:
                raise
            except Exception as exc:  # tried again in an hour; the answer does not wait for it
                log.warning("retention not applied: %s", type(exc).__name__)
                return
            if scrubbed:
                log.info("retention: removed the words of %d exchanges", scrubbed)


def _why_unseen(entry: ModelEntry, blind: int, trimmed: int) -> str:
    """Why earlier images were not shown again (the footer says it once): "" when none was left out."""
    if blind:
        return f"{entry.name} cannot see images"
    return f"they no longer fit {entry.name}'s context window" if trimmed else ""
