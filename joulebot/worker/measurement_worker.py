"""The measurement worker: one per metered box, one job at a time, only our job.

`MeasurementWorker` is an RQ `SimpleWorker`, on purpose: jobs run in the
worker's own process, so the model stays loaded between answers (a forking
worker reloads it for every job: 1.4 s per answer for SmolLM2 here) and the
meters and the idle baseline live as long as the worker. It overrides a few of
RQ's public hooks, and nothing private:

- `perform_job` refuses any job that is not joulebot's job function, or that
  cannot be read (`gate`), and hands the worker's station to the one that is;
  `dequeue_job_and_maintain_ttl` refuses a job hash RQ cannot parse;
- `heartbeat` counts failed reconnects, so a worker that lost Redis for good
  exits non-zero (a process manager restarts it) instead of spinning forever;
- the three steps that write a job's outcome wait for Redis to come back, so
  a Redis restart mid-answer never strands the job in the started registry.

`serve()` is the process: box lock, heartbeat, warm-up, then the dequeue loop,
restarted after a connection loss. In embedded mode the worker also owns the
embedded Redis server: when spawned by `joulebot ask` it exits after a quiet
period and shuts the server down with it (under the embedded lock, only if no
job waits).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import signal
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import redis
from rq import Queue, SimpleWorker
from rq.exceptions import StopRequested
from rq.job import Job
from rq.serializers import JSONSerializer

from joulebot.config import Settings
from joulebot.history import HistoryUnavailable
from joulebot.queueing import connection as conn
from joulebot.queueing.box_lock import BoxLock, BoxTaken
from joulebot.queueing.catalog import publish_catalog
from joulebot.queueing.embedded import claim_pid_file, release_pid_file
from joulebot.queueing.fleet import Fleet
from joulebot.worker.gate import count_refused, refusal, unreadable_job
from joulebot.worker.heartbeat import REDIS_ERRORS, Heartbeat
from joulebot.worker.idle import IdleKeeper
from joulebot.worker.job import serving
from joulebot.worker.outbox import HistoryOutbox
from joulebot.worker.station import Station
from joulebot.worker.stopping import StopClock

log = logging.getLogger(__name__)

T = TypeVar("T")


class RedisLost(RuntimeError):
    """Redis stayed unreachable through every reconnect: exit non-zero so a process manager restarts us."""


class WorkerExit(SystemExit):
    """The worker stops with a reason (exit status 1 or 2); the CLI prints the reason on one line."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(code)
        self.reason = reason


class MeasurementWorker(SimpleWorker):
    def __init__(
        self, queue: Queue, station: Station, reconnect_attempts: int, reconnect_wait_s: float, clock: StopClock
    ) -> None:
        # A connection of its own: RQ sets its socket timeout above the blocking dequeue's, and
        # connections made earlier with redis-py's 5 s default would time the dequeue out.
        connection = conn.connect(station.settings, socket_timeout=None)
        super().__init__(
            [Queue(queue.name, connection=connection, serializer=JSONSerializer)],
            connection=connection,
            serializer=JSONSerializer,
        )
        self.station = station
        self.clock = clock
        self.reconnect_attempts = reconnect_attempts
        self.reconnect_wait_s = reconnect_wait_s
        self.max_connection_wait_time = reconnect_wait_s  # RQ's own backoff between reconnects, capped
        self.stop_requested = False
        self.idle_exited = False
        self.failed_reconnects = 0
        self.lost_redis: RedisLost | None = None

    # --- what runs -------------------------------------------------------------------------
    def perform_job(self, job: Job, queue: Queue, execution: Any) -> bool:
        reason = refusal(job)
        if reason is not None:  # failed without reading its function again (RQ's bookkeeping would)
            job.retries_left = 0  # a refused job is never retried,
            job.webhooks = []  # and tells nobody that it failed
            count_refused(self.connection, queue, job.id, reason)  # counted before anyone can see it failed
            self.handle_job_failure(job, queue, exc_string=f"refused: {reason}", execution=execution)
            return False
        self.clock.job_started(job.timeout or self.queue_class.DEFAULT_TIMEOUT)
        try:
            with serving(self.station):
                return super().perform_job(job, queue, execution)
        finally:
            self.clock.job_ended()

    # --- staying up ------------------------------------------------------------------------
    def request_stop(self, signum: int, frame: Any) -> None:
        self.clock.arm(signal.Signals(signum).name)
        self.stop_requested = True
        super().request_stop(signum, frame)

    def set_shutdown_requested_date(self) -> None:
        """RQ notes the stop request in Redis from inside the signal handler, on the thread that runs
        the answer: on a thread of its own, so that a stalled Redis never holds the answer up."""
        threading.Thread(target=super().set_shutdown_requested_date, name="joulebot-stop-note", daemon=True).start()

    def subscribe(self) -> None:
        """No pub/sub command channel (RQ's `send_shutdown_command` and friends): joulebot stops its worker
        with SIGTERM. RQ's listener thread could hold the worker's exit: stopping it waits for the thread
        without a timeout, and the thread waits up to a minute for a subscription that never comes once
        it has read the unsubscribe reply first (it does when the machine is busy)."""

    def dequeue_job_and_maintain_ttl(self, timeout: int | None, max_idle_time: int | None = None) -> Any:
        while True:
            try:
                result = super().dequeue_job_and_maintain_ttl(timeout, max_idle_time)
                break
            except Exception as exc:  # a job hash RQ cannot parse: refused, never the end of RQ's loop
                if (unreadable := unreadable_job(exc)) is None:
                    raise
                job_id, queue = unreadable
                count_refused(self.connection, queue, job_id, f"its job hash cannot be read ({type(exc).__name__})")
        self.idle_exited = result is None and max_idle_time is not None
        return result

    def heartbeat(self, timeout: int | None = None, pipeline: Any = None) -> None:
        if pipeline is not None:  # part of a job's bookkeeping transaction: nothing sent yet
            return super().heartbeat(timeout, pipeline)
        try:
            super().heartbeat(timeout, pipeline)
        except REDIS_ERRORS as exc:
            self.failed_reconnects += 1
            if self.failed_reconnects > self.reconnect_attempts:  # RQ's loop logs it and returns
                self.lost_redis = RedisLost(f"Redis unreachable after {self.reconnect_attempts} reconnects: {exc}")
                raise self.lost_redis from exc
            raise  # RQ's dequeue loop waits (with backoff) and tries again
        if self.failed_reconnects:
            log.warning("Redis is back after %d failed attempts", self.failed_reconnects)
            self.failed_reconnects = 0
            if not self.connection.exists(self.key):  # a restarted Redis lost the worker's registration
                self.register_birth()

    def teardown(self) -> None:
        try:
            super().teardown()
        except REDIS_ERRORS:  # registering our death needs the Redis we just lost; it expires anyway
            log.warning("could not unregister the worker: Redis is unreachable")

    # --- writing a job's outcome ------------------------------------------------------------
    def handle_execution_ended(self, job: Job, queue: Queue, heartbeat_ttl: int) -> None:
        self._patiently(lambda: super(MeasurementWorker, self).handle_execution_ended(job, queue, heartbeat_ttl))

    def handle_job_success(self, job: Job, queue: Queue, started_job_registry: Any, execution: Any) -> None:
        self._patiently(
            lambda: super(MeasurementWorker, self).handle_job_success(job, queue, started_job_registry, execution)
        )

    def handle_job_failure(
        self, job: Job, queue: Queue, started_job_registry: Any = None, exc_string: str = "", execution: Any = None
    ) -> None:
        self._wait_for_redis()  # RQ swallows a failed write here; make sure Redis answers first
        super().handle_job_failure(job, queue, started_job_registry, exc_string, execution)

    def _patiently(self, write: Callable[[], T]) -> T:
        """Run a write of the job's outcome, waiting through a Redis restart (bounded)."""
        deadline = time.monotonic() + self.reconnect_attempts * self.reconnect_wait_s
        while True:
            try:
                return write()
            except REDIS_ERRORS as exc:
                if time.monotonic() > deadline:
                    raise
                log.warning("Redis unavailable while storing a job's outcome (%s); retrying", type(exc).__name__)
                self._wait_for_redis()

    def _wait_for_redis(self) -> None:
        for _ in range(self.reconnect_attempts):
            if conn.is_up(self.connection):
                return
            time.sleep(self.reconnect_wait_s)


@contextlib.contextmanager
def _embedded_server(settings: Settings) -> Iterator[None]:
    """In embedded mode: start the embedded Redis and note our pid; forget the pid at exit."""
    if not settings.embedded_redis:
        yield
        return
    with conn.embedded_lock(settings):
        conn.start_embedded_redis(settings)
        claim_pid_file(settings)
    try:
        yield
    finally:
        release_pid_file(settings)


def serve(settings: Settings, idle_exit_s: int | None = None, burst: bool = False) -> None:
    """Serve the queue until stopped (or idle for `idle_exit_s`, or empty with `burst`).

    Raises WorkerExit with a reason when the worker cannot serve: the box is taken
    (exit 2), or Redis stayed unreachable (exit 1).
    """
    # until RQ's loop installs its warm-shutdown handlers, SIGTERM/SIGINT end the start-up cleanly
    # (box lock released, pid file forgotten) instead of killing the process mid-warm-up
    clock = StopClock(settings.worker_stop_grace_s)
    signal.signal(signal.SIGTERM, functools.partial(_stop_while_starting, clock))
    signal.signal(signal.SIGINT, functools.partial(_stop_while_starting, clock))
    with _embedded_server(settings):
        control = conn.connect(settings)  # short timeouts: heartbeat, lock, catalog, outbox
        lock = BoxLock(control, settings.box_name, settings.queue_name, settings.worker_lost_after_s)
        try:
            lock.acquire()
        except BoxTaken as exc:
            raise WorkerExit(2, str(exc)) from None
        except (redis.ResponseError, redis.AuthenticationError) as exc:  # MISCONF, OOM, READONLY, NOAUTH, …
            raise WorkerExit(1, f"Redis ({conn.describe(settings)}) {conn.refused(exc)}") from None
        except REDIS_ERRORS as exc:
            raise WorkerExit(1, f"Redis is unreachable ({conn.describe(settings)}): {type(exc).__name__}") from None
        heartbeat = Heartbeat(control, settings.queue_name, lock, settings.worker_lost_after_s)
        heartbeat.start()
        keeper: IdleKeeper | None = None
        metrics = _serve_metrics(settings)
        try:
            station, keeper = _warm_station(settings, control)
            keeper.start()
            heartbeat.profile, heartbeat.state = station.profile, lambda: station.state  # published each beat
            heartbeat.beat()
            queue = conn.queue_for(settings, control)
            _dequeue_loop(settings, station, queue, heartbeat, clock, idle_exit_s, burst)
        finally:
            if keeper is not None:
                keeper.stop()
            heartbeat.stop()
            if metrics is not None:
                metrics.shutdown()


def _serve_metrics(settings: Settings) -> Any:
    """With METRICS_PORT: this box's /metrics on a thread, for boxes that run no dashboard."""
    if settings.metrics_port is None:
        return None
    from joulebot.web.metrics import serve_worker_metrics  # only where it is asked for

    server, _thread = serve_worker_metrics(settings)
    return server


def _stop_while_starting(clock: StopClock, signum: int, frame: Any) -> None:
    clock.arm(signal.Signals(signum).name)
    raise WorkerExit(0, f"stopped by {signal.Signals(signum).name} while starting; no job was taken")


def _warm_station(settings: Settings, control: redis.Redis) -> tuple[Station, IdleKeeper]:
    """Models loaded, idle baseline kept (or due), catalog published: ready for the first job."""
    try:
        station = Station(settings)
        station.on_catalog = lambda catalog: publish_catalog(control, settings.queue_name, catalog)
        station.outbox = HistoryOutbox(control, settings.queue_name)
        station.idle_keeper = keeper = IdleKeeper(control, station)
        station.warm_up()
        Fleet(control, settings.worker_lost_after_s).forget_older_than(settings.box_forget_after_s)
    except (redis.ResponseError, redis.AuthenticationError) as exc:
        raise WorkerExit(1, f"Redis ({conn.describe(settings)}) {conn.refused(exc)}") from None
    except REDIS_ERRORS as exc:
        raise WorkerExit(1, f"lost Redis ({conn.describe(settings)}) while starting: {type(exc).__name__}") from None
    except HistoryUnavailable as exc:  # the answers could not be stored: do not take any
        raise WorkerExit(2, f"DATABASE_URL: {exc}") from None
    return station, keeper


def _dequeue_loop(
    settings: Settings,
    station: Station,
    queue: Queue,
    heartbeat: Heartbeat,
    clock: StopClock,
    idle_exit_s: int | None,
    burst: bool,
) -> None:
    """Run RQ's loop; start it again after it gave up on Redis, until stopped or idle."""
    restarts = 0
    while True:
        worker = MeasurementWorker(
            queue, station, settings.redis_reconnect_attempts, settings.redis_reconnect_wait_s, clock
        )
        try:
            worked = worker.work(burst=burst, max_idle_time=idle_exit_s, logging_level="WARNING")
        except REDIS_ERRORS:  # lost before RQ's loop could catch it (registering the worker, say)
            worked = False
        except (WorkerExit, StopRequested) as stop:  # a stop signal while RQ registered the worker, before its
            worker.teardown()  # loop's own teardown covers it: unregister, or front ends count a worker that is gone
            if isinstance(stop, WorkerExit):
                raise
            return
        if worker.lost_redis is not None:
            raise WorkerExit(1, f"{worker.lost_redis}; exiting so that the process manager restarts the worker")
        if heartbeat.lost_box:
            raise WorkerExit(2, f"box {settings.box_name!r} was taken over by another worker")
        if worker.stop_requested or burst:
            return
        if not worker.idle_exited:  # RQ left its loop on an error (a Redis timeout or loss): serve on
            restarts = 0 if worked else restarts + 1
            if restarts > settings.redis_reconnect_attempts:
                raise WorkerExit(1, "the worker loop keeps failing without doing any work; see the log above")
            try:
                _reconnect(settings, worker)
            except StopRequested:  # SIGTERM between two runs of RQ's loop (its handler is still installed)
                return
            continue
        if not settings.embedded_redis:
            return
        with conn.embedded_lock(settings):
            if queue.count == 0:  # nobody enqueued meanwhile: stop the pair
                heartbeat.stop()
                conn.stop_embedded_redis(settings)
                return


def _reconnect(settings: Settings, worker: MeasurementWorker) -> None:
    for attempt in range(1, settings.redis_reconnect_attempts + 1):
        if conn.is_up(worker.connection):
            log.warning("Redis connection lost and regained; serving again")
            return
        log.warning("Redis unreachable (attempt %d/%d)", attempt, settings.redis_reconnect_attempts)
        time.sleep(settings.redis_reconnect_wait_s)
    raise WorkerExit(1, f"Redis unreachable after {settings.redis_reconnect_attempts} reconnects; exiting")
