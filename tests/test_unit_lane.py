"""The unit mark is checked, not trusted: a test marked unit that reaches a process, a socket or
PostgreSQL fails with one line saying so, even where the code under test catches the refusal."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

TESTS = Path(__file__).parent

LANE_TESTS = """
import socket, subprocess, threading
import psycopg, pytest

@pytest.mark.unit
def test_pure():
    assert sum(range(4)) == 6

@pytest.mark.unit
def test_starts_a_process():
    subprocess.run(["true"], check=True)

@pytest.mark.unit
def test_swallows_a_refused_connection():
    try:
        socket.create_connection(("127.0.0.1", 9), timeout=0.1)
    except BaseException:
        pass

@pytest.mark.unit
def test_reaches_postgresql():
    with pytest.raises(Exception):
        psycopg.connect("host=127.0.0.1 port=9 connect_timeout=1")

_LEFT = []

def test_unmarked_leaves_a_thread_that_connects_later():
    stop = threading.Event()
    def reconnecting():
        while not stop.wait(0.01):
            try:
                socket.create_connection(("127.0.0.1", 9), timeout=0.1)
            except OSError:
                pass
    thread = threading.Thread(target=reconnecting, daemon=True)
    thread.start()
    _LEFT.append(stop)

@pytest.mark.unit
def test_pure_beside_an_earlier_tests_thread():
    import time
    time.sleep(0.1)  # the earlier test's thread connects meanwhile: not this test's doing
    _LEFT[0].set()

def test_unmarked_may_start_a_process():
    subprocess.run(["true"], check=True)
"""


def test_a_unit_test_that_reaches_a_process_socket_or_postgresql_fails(tmp_path: Path) -> None:
    (tmp_path / "conftest.py").write_text(
        f"import sys\nsys.path.insert(0, {str(TESTS)!r})\n"
        "from unit_lane import pytest_runtest_makereport, pytest_runtest_protocol  # noqa: F401\n"
    )
    (tmp_path / "test_lane.py").write_text(LANE_TESTS)
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rf", str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    out = run.stdout
    assert "4 passed" in out and "3 failed" in out, out
    assert "test_starts_a_process - " in out and "a test marked unit started a process" in out
    assert "a test marked unit connected a socket" in out
    assert "a test marked unit connected to PostgreSQL" in out
