"""Waiting for a condition that another process makes true, up to a bound."""

from __future__ import annotations

import time


def wait(condition, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)
