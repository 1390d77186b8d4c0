"""One sampling thread per meter, shared by the windows open on it.

A window that starts a thread of its own and joins it at its end costs about a millisecond of
every answer's time (the start, the wake-up to stop, the join; more on a busy machine), for a
meter that is read all the same way each time. A feed's thread lives as long as its meter: it
reads the meter every `interval_s` while at least one window is open, hands each read to every
open window, and waits without reading while none is. What a window holds means what its own
thread's samples meant: a read at its start (taken by the window itself, right away), reads
every `interval_s` while it is open, and one at its end.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Protocol


class FedWindow(Protocol):
    def fed(self, stamped_at: float, value: float | None, error: str | None, cpu_s: float) -> bool:
        """Take one read (`value`, or the reason there is none); False: stop feeding this window."""
        ...


class SampleFeed:
    def __init__(self, sample: Callable[[], float], interval_s: float, name: str, unavailable: type[Exception]) -> None:
        self.sample, self.interval_s, self.name = sample, interval_s, name
        self.unavailable = unavailable  # what `sample` raises when the meter cannot be read
        self._windows: list[FedWindow] = []
        self._changed = threading.Condition()
        self._thread: threading.Thread | None = None

    def open(self, window: FedWindow) -> None:
        """Feed `window` from the next read on (the thread starts with the first window ever opened)."""
        with self._changed:
            self._windows.append(window)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
                self._thread.start()
            self._changed.notify()

    def close(self, window: FedWindow) -> None:
        """No read reaches `window` once this returns."""
        with self._changed:
            if window in self._windows:
                self._windows.remove(window)

    def _run(self) -> None:
        next_at = 0.0
        while True:
            with self._changed:
                if not self._windows:
                    self._changed.wait_for(lambda: bool(self._windows))
                    next_at = time.perf_counter()  # a window just opened: read now
            cpu0, t0 = time.thread_time(), time.perf_counter()
            value, error = None, None
            try:
                value = self.sample()
            except self.unavailable as exc:
                error = str(exc)
            stamped_at, cpu_s = (t0 + time.perf_counter()) / 2, time.thread_time() - cpu0
            with self._changed:
                self._windows = [w for w in self._windows if w.fed(stamped_at, value, error, cpu_s)]
            next_at += self.interval_s
            time.sleep(max(0.0, next_at - time.perf_counter()))
