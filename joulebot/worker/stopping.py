"""A worker that always stops, whatever its threads are doing.

SIGTERM asks for a warm shutdown: no new job is taken, the running answer finishes
(RQ's job timeout bounds it) and is stored and delivered, then the worker says
goodbye (its box marked stopped, its lock released) and exits 0. Everything after
the answer talks to Redis or the database, and either may stall with the connection
up; so SIGTERM also starts a clock. The bound is

    the running job's time limit, counted from its start (none when idle)
    + WORKER_STOP_GRACE_S

and a process still there at that moment writes where each of its threads waits,
then one line, and leaves at once with status 1 (`os._exit`: nothing it waits for
can hold it). A process manager should give the worker a little more than that
bound before it sends SIGKILL (systemd's `TimeoutStopSec`, compose's
`stop_grace_period`).
"""

from __future__ import annotations

import faulthandler
import os
import sys
import threading
import time

EXIT_STATUS = 1


class StopClock:
    def __init__(self, grace_s: float) -> None:
        self.grace_s = grace_s
        self.job_ends_at: float | None = None  # monotonic: when the running job's time limit is up
        self._armed = threading.Event()

    def job_started(self, time_limit_s: float) -> None:
        self.job_ends_at = time.monotonic() + time_limit_s

    def job_ended(self) -> None:
        self.job_ends_at = None

    def arm(self, signal_name: str) -> None:
        """Start the clock (once; safe in a signal handler: it only starts a thread)."""
        if self._armed.is_set():
            return
        self._armed.set()
        now = time.monotonic()
        deadline = max(now, self.job_ends_at or now) + self.grace_s
        thread = threading.Thread(
            target=self._expire, args=(deadline, deadline - now, signal_name), name="joulebot-stop-clock", daemon=True
        )
        thread.start()

    @staticmethod
    def _expire(deadline: float, bound_s: float, signal_name: str) -> None:
        while (left := deadline - time.monotonic()) > 0:
            time.sleep(left)
        faulthandler.dump_traceback(file=sys.stderr, all_threads=True)
        print(
            f"joulebot: the worker did not stop within {bound_s:.0f} s of {signal_name}"
            " (the running answer and WORKER_STOP_GRACE_S); exiting now, the threads above show what it waited for",
            file=sys.stderr,
            flush=True,
        )
        os._exit(EXIT_STATUS)
