"""The measurement worker: one per metered box, one job at a time.

It is an RQ `SimpleWorker`, on purpose: jobs run in the worker's own process,
so the model stays loaded between answers (a forking worker reloads it for
every job: 1.4 s per answer for SmolLM2 here) and the meters and the idle
baseline live as long as the worker. The price is the per-job isolation of a
fork, which a single-purpose measurement box does not need.

In embedded mode the worker also owns the embedded Redis server: it starts it,
and when it was spawned by `joulebot ask` it exits after a quiet period and
shuts the server down with it (under the embedded lock, only if no job waits).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
from rq import Queue, SimpleWorker
from rq.serializers import JSONSerializer

from joulebot.config import Settings
from joulebot.queue_worker import connection as conn
from joulebot.queue_worker.job import use_station
from joulebot.queue_worker.outbox import HistoryOutbox
from joulebot.queue_worker.published import publish_catalog
from joulebot.queue_worker.station import Station

log = logging.getLogger(__name__)


def queue_for(settings: Settings, connection=None) -> Queue:
    return Queue(settings.queue_name, connection=connection or conn.connect(settings), serializer=JSONSerializer)


def pid_path(settings: Settings) -> Path:
    return settings.data_dir / "worker.pid"


def embedded_worker_alive(settings: Settings) -> bool:
    try:
        process = psutil.Process(int(pid_path(settings).read_text()))
        return process.status() != psutil.STATUS_ZOMBIE
    except (FileNotFoundError, ValueError, psutil.NoSuchProcess):
        return False


def _claim_pid_file(settings: Settings) -> None:
    pid_path(settings).write_text(str(os.getpid()))


def _release_pid_file(settings: Settings) -> None:
    try:
        if int(pid_path(settings).read_text()) == os.getpid():
            pid_path(settings).unlink()
    except (FileNotFoundError, ValueError):
        pass


def alive_key(queue_name: str) -> str:
    """Present while the queue's measurement worker process lives (it refreshes it on a thread)."""
    return f"joulebot:worker-alive:{queue_name}"


class Heartbeat(threading.Thread):
    """Keeps `alive_key` set while the process lives, also during a long job.

    RQ's SimpleWorker does not heartbeat while it runs a job in its own thread, so a
    long answer and a killed worker look alike from outside; this key tells them apart
    (one SET every few seconds: negligible next to the answer's energy).
    """

    def __init__(self, connection, queue_name: str, ttl_s: float) -> None:
        super().__init__(name="joulebot-heartbeat", daemon=True)
        self.connection, self.key, self.ttl_s = connection, alive_key(queue_name), ttl_s
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.is_set():
            with contextlib.suppress(Exception):  # a Redis hiccup must not kill the worker
                self.connection.set(self.key, str(os.getpid()), px=int(self.ttl_s * 1000))
            self.stopped.wait(self.ttl_s / 4)

    def stop(self) -> None:
        self.stopped.set()
        with contextlib.suppress(Exception):
            self.connection.delete(self.key)


def run_worker(settings: Settings, idle_exit_s: int | None = None, burst: bool = False) -> None:
    """Serve the queue until stopped (or idle for `idle_exit_s`, or empty with `burst`)."""
    if settings.embedded_redis:
        with conn.embedded_lock(settings):
            conn.start_embedded_redis(settings)
            _claim_pid_file(settings)
    try:
        station = Station(settings)
        queue = queue_for(settings)
        station.on_catalog = lambda catalog: publish_catalog(queue.connection, settings.queue_name, catalog)
        station.outbox = HistoryOutbox(queue.connection, settings.queue_name)
        heartbeat = Heartbeat(queue.connection, settings.queue_name, settings.worker_lost_after_s)
        heartbeat.start()
        station.warm_up()
        use_station(station)
        while True:
            worker = SimpleWorker([queue], connection=queue.connection, serializer=JSONSerializer)
            worker.work(burst=burst, max_idle_time=idle_exit_s, logging_level="WARNING")
            stopped = getattr(worker, "_shutdown_requested_date", None) is not None  # SIGTERM/SIGINT
            if stopped or burst or idle_exit_s is None or not settings.embedded_redis:
                return
            with conn.embedded_lock(settings):
                if queue.count == 0:  # nobody enqueued meanwhile: stop the pair
                    heartbeat.stop()
                    _release_pid_file(settings)
                    conn.stop_embedded_redis(settings)
                    return
    finally:
        if "heartbeat" in locals():
            heartbeat.stop()
        if settings.embedded_redis:
            _release_pid_file(settings)


def ensure_embedded_stack(settings: Settings) -> None:
    """Make sure the embedded Redis answers and an embedded worker serves it.

    Returns as soon as the job can be queued: a worker that is still warming up
    takes it when ready (the client shows that it waits).
    """
    with conn.embedded_lock(settings):
        conn.start_embedded_redis(settings)
        if embedded_worker_alive(settings):
            return
        with open(settings.data_dir / "worker.log", "ab") as log_file:
            child = subprocess.Popen(
                [sys.executable, "-m", "joulebot", "worker", "--idle-exit", str(settings.embedded_worker_idle_exit_s)],
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=log_file,
                start_new_session=True,  # Ctrl-C in the user's terminal must not reach it
                env={**os.environ, "JOULEBOT_DATA_DIR": str(settings.data_dir)},
            )
        pid_path(settings).write_text(str(child.pid))  # before the lock is released: no second spawn


def stop_embedded_stack(settings: Settings, timeout_s: float = 30.0) -> bool:
    """Stop the embedded worker (it finishes its current job) and the embedded Redis.

    Returns False if the worker had to be killed because it did not stop in time.
    """
    graceful = True
    with conn.embedded_lock(settings):
        try:
            pid = int(pid_path(settings).read_text())
        except (FileNotFoundError, ValueError):
            pid = None
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)  # RQ's warm shutdown: the running job completes
                graceful = _wait_gone(pid, timeout_s)
                if not graceful:
                    os.kill(pid, signal.SIGKILL)
                    _wait_gone(pid, 5)
            pid_path(settings).unlink(missing_ok=True)
        conn.stop_embedded_redis(settings)
    return graceful


def _wait_gone(pid: int, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True  # exited; only its parent's reaping is left
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.05)
    return False
