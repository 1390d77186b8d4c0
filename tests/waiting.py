"""Waiting for a condition that another process makes true, up to a bound."""

from __future__ import annotations

import time
from collections.abc import Callable


def wait(condition: Callable[[], object], timeout: float = 60.0, what: str = "condition") -> None:
    """Poll `condition()` until it holds; fail after `timeout` seconds, naming `what` was awaited."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def minute_start(margin_s: float = 20.0) -> None:
    """Per-minute limits count calendar minutes: begin a burst at least `margin_s` before one ends."""
    _clear_of_the_end(60, margin_s)


def day_start(margin_s: float = 120.0) -> None:
    """Energy budgets count UTC days: begin at least `margin_s` before midnight UTC (waits at most that)."""
    _clear_of_the_end(86_400, margin_s)


def _clear_of_the_end(period_s: int, margin_s: float) -> None:
    left = period_s - time.time() % period_s
    if left < margin_s:
        time.sleep(left + 1)
