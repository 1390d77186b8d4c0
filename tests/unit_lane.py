"""The unit lane: tests marked `unit` start no process and open no socket, so they run serially in
seconds (`pytest -m unit`). The mark is checked, not trusted: while a unit test runs (setup, call and
teardown), starting a process or connecting, binding or listening on a socket fails it with a line
that says so. Redis, PostgreSQL (libpq, watched at psycopg's connect), the stand-ins,
the worker and the model are all behind one of those.

`JOULEBOT_UNIT_SURVEY=DIR` turns the guard into a recorder for every test, marked or not: each
test's node id, whether it touched a process or socket and its duration go to DIR (one file per
xdist worker) — how the marks were first placed, and how to find tests that could join the lane.
"""

from __future__ import annotations

import os
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest
import urllib3  # noqa: F401 (its import probes IPv6 with a socket once: done before any guard)

SURVEY_DIR = os.environ.get("JOULEBOT_UNIT_SURVEY")

# (owner, attribute, what it does): the doors to another process or to the network
_DOORS: list[tuple[Any, str, str]] = [
    (subprocess.Popen, "_execute_child", "started a process"),
    (os, "fork", "forked"),
    (os, "posix_spawn", "started a process"),
    (socket.socket, "connect", "connected a socket"),
    (socket.socket, "connect_ex", "connected a socket"),
    (socket.socket, "bind", "bound a socket"),
    # libpq opens its own sockets in C, out of Python's sight
    (psycopg, "connect", "connected to PostgreSQL"),
    (psycopg.Connection, "connect", "connected to PostgreSQL"),
    (psycopg.AsyncConnection, "connect", "connected to PostgreSQL"),
]


class UnitLaneViolation(AssertionError):
    """A test marked `unit` reached a process or a socket."""


@contextmanager
def _doors_watched(on_touch: Callable[[str], None]) -> Iterator[None]:
    """Watch the doors for this test: its own thread and the threads it starts. Threads an earlier test
    left running (a follower, a server, a pool) are not this test's doing: in a whole serial run they
    may reconnect while a unit test runs, and pass through unwatched."""
    originals = [(owner, name, getattr(owner, name)) for owner, name, _ in _DOORS]
    left_running = set(threading.enumerate()) - {threading.current_thread()}

    def watched(original: Callable[..., Any], what: str) -> Callable[..., Any]:
        def door(*args: Any, **kwargs: Any) -> Any:
            if threading.current_thread() not in left_running:
                on_touch(what)
            return original(*args, **kwargs)

        return door

    for (owner, name, what), (_, _, original) in zip(_DOORS, originals, strict=True):
        setattr(owner, name, watched(original, what))
    try:
        yield
    finally:
        for owner, name, original in originals:
            setattr(owner, name, original)


_TOUCHED = pytest.StashKey[list[str]]()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    touched = item.stash.setdefault(_TOUCHED, [])
    if SURVEY_DIR:
        started = time.perf_counter()
        with _doors_watched(touched.append):
            yield
        worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
        line = f"{item.nodeid}\t{int(bool(touched))}\t{time.perf_counter() - started:.3f}\n"
        with (Path(SURVEY_DIR) / f"survey-{worker}.tsv").open("a") as survey:
            survey.write(line)
    elif item.get_closest_marker("unit") is not None:

        def refuse(what: str) -> None:
            touched.append(what)
            raise UnitLaneViolation(f"a test marked unit {what}")

        with _doors_watched(refuse):
            yield
    else:
        yield


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Fail a unit test that reached a door even where the code under test caught the refusal."""
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    touched = item.stash.get(_TOUCHED, [])
    if touched and not SURVEY_DIR and item.get_closest_marker("unit") is not None and not report.failed:
        report.outcome = "failed"
        report.longrepr = f"a test marked unit {touched[0]}: it belongs in the fast lane; take its unit mark off"
        touched.clear()
