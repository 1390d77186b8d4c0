"""The worker's own heartbeat: proof of life for waiting clients, and the box lock's renewal."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
from collections.abc import Callable

import redis

from joulebot.keys import alive_key
from joulebot.queueing.box_lock import BoxLock
from joulebot.queueing.fleet import BoxProfile, mark_stopped, publish_profile

log = logging.getLogger(__name__)

REDIS_ERRORS = (redis.ConnectionError, redis.TimeoutError, FileNotFoundError, ConnectionError)


class Heartbeat(threading.Thread):
    """Keeps `alive_key` and the box lock while the process lives, also during a long job.

    RQ's SimpleWorker does not heartbeat while it runs a job in its own thread, so a
    long answer and a killed worker look alike from outside; this key tells them apart
    (two commands every few seconds: negligible next to the answer's energy). If the box
    lock was taken by another worker (ours lapsed during a long outage), the process
    asks itself to stop: two workers must never measure one box. Each beat also
    publishes the box's profile for the fleet's front ends (`profile`, once set).
    """

    def __init__(self, connection: redis.Redis, queue_name: str, lock: BoxLock, ttl_s: float) -> None:
        super().__init__(name="joulebot-heartbeat", daemon=True)
        self.connection, self.key, self.lock, self.ttl_s = connection, alive_key(queue_name), lock, ttl_s
        self.profile: Callable[[], BoxProfile] | None = None  # the worker sets both once its station is warm
        self.state: Callable[[], str] = lambda: "starting"
        self.stopped = threading.Event()
        self._publishing = threading.Lock()  # a beat in flight must not publish "idle" after "stopped"
        self.lost_box = False

    def run(self) -> None:
        failing: str | None = None  # what the last beat failed with, said once until it changes
        while not self.stopped.is_set():
            try:
                self.beat()
                failing = None
            except Exception as exc:  # Redis refusing writes (MISCONF, OOM, READONLY), a profile that fails: beat on
                if type(exc).__name__ != failing:
                    failing = type(exc).__name__
                    log.error("heartbeat failed (%s); trying again every %.1f s", failing, self.ttl_s / 4)
            self.stopped.wait(self.ttl_s / 4)

    def beat(self) -> None:
        try:
            self.connection.set(self.key, str(os.getpid()), px=int(self.ttl_s * 1000))
            if not self.lock.renew() and not self.lost_box:
                self.lost_box = True
                log.error("box lock lost to another worker (%s); stopping", self.lock.holder())
                os.kill(os.getpid(), signal.SIGTERM)  # warm shutdown: the running job completes
            with self._publishing:
                if self.profile is not None and not self.lost_box and not self.stopped.is_set():
                    publish_profile(self.connection, self.profile(), self.state())
        except REDIS_ERRORS:
            pass  # a Redis hiccup must not kill the worker; the lock is renewed on the next beat

    def stop(self) -> None:
        self.stopped.set()
        with self._publishing:
            if self.profile is not None and not self.lost_box:
                mark_stopped(self.connection, self.profile())
        with contextlib.suppress(*REDIS_ERRORS):
            self.connection.delete(self.key)
            self.lock.release()
