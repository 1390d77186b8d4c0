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
import threading

from rq import SimpleWorker
from rq.serializers import JSONSerializer

from joulebot.config import Settings
from joulebot.queue_worker import connection as conn
from joulebot.queue_worker.embedded import claim_pid_file, release_pid_file
from joulebot.queue_worker.job import use_station
from joulebot.queue_worker.keys import alive_key
from joulebot.queue_worker.outbox import HistoryOutbox
from joulebot.queue_worker.published import publish_catalog
from joulebot.queue_worker.station import Station

log = logging.getLogger(__name__)


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
            claim_pid_file(settings)
    try:
        station = Station(settings)
        queue = conn.queue_for(settings)
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
                    release_pid_file(settings)
                    conn.stop_embedded_redis(settings)
                    return
    finally:
        if "heartbeat" in locals():
            heartbeat.stop()
        if settings.embedded_redis:
            release_pid_file(settings)


