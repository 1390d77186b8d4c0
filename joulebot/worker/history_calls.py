"""The worker's calls to the history database, each against a clock of the worker's own.

The history write sits on the answer's path. The driver bounds what it can (see
`joulebot.history.bounds`), but not a database that stalls with the connection up:
nothing comes back, and nothing says so. Nor can RQ's job timeout end that wait: it
is a signal, and the old code caught what it raised as one more history error, so a
stalled database first used up one job's whole time limit and then ran the next job
past its own. So the worker makes every history call on one thread of its own and
waits for it with a deadline: past it, the engine's connections are cut (the call
fails, the thread is free for the next one) and the caller gets `HistoryTimeout`
at once — the answer goes out, its Result waits in the outbox. One thread keeps the
calls in order and lets a stalled one hold up nobody but the calls queued behind it.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import TypeVar

from joulebot.history import HistoryStore
from joulebot.history.bounds import cut

log = logging.getLogger(__name__)

T = TypeVar("T")


class HistoryTimeout(TimeoutError):
    """The history database did not answer within the deadline (its connections were cut)."""


class HistoryCalls:
    def __init__(self, store: Future[HistoryStore], timeout_s: float) -> None:
        self.store = store  # opened on a thread of its own while the model loads
        self.timeout_s = timeout_s
        self._calls: queue.SimpleQueue[tuple[Future, Callable[[HistoryStore], object]]] = queue.SimpleQueue()
        # a daemon thread: a call stuck on a dead database must never keep the process from exiting
        self._thread = threading.Thread(target=self._serve, name="joulebot-history", daemon=True)
        self._thread.start()

    def call(self, work: Callable[[HistoryStore], T], within: float | None = None) -> T:
        """`work(store)` on the history thread; its value or its exception, or HistoryTimeout after
        `HISTORY_TIMEOUT_S` (or `within` seconds, if sooner). Whatever the caller's thread is
        interrupted by meanwhile (RQ's job timeout) reaches the caller unchanged."""
        limit = self.timeout_s if within is None else min(within, self.timeout_s)
        if limit <= 0:
            raise HistoryTimeout("no time was left for the history database")
        future: Future[T] = Future()
        self._calls.put((future, work))
        try:
            return future.result(timeout=limit)
        except FutureTimeout:
            future.cancel()  # not started yet: it never runs
            cut_now = cut(self.store.result().engine)
            log.warning("the history database did not answer within %.1f s; cut %d connections", limit, cut_now)
            raise HistoryTimeout(f"the history database did not answer within {limit:.0f} s") from None

    def _serve(self) -> None:
        while True:
            future, work = self._calls.get()
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(work(self.store.result()))
            except BaseException as exc:  # handed to the caller (if it still waits)
                future.set_exception(exc)
