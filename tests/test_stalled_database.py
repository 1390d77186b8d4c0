"""The history database stalls: PostgreSQL behind a TCP proxy that stops answering (the connection stays
up, nothing comes back), with real worker processes, a Redis of the test's own and the Ollama stand-in."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import sqlalchemy
from faultproxy import FaultProxy
from testenv import POSTGRES_URL, make_settings, run_cli
from waiting import wait
from workers import ask, serving, start_worker, stop, worker_settings

from joulebot.history import HistoryStore
from joulebot.history.engine import make_engine

STORED_LATER = "⚠️ history is unavailable: this exchange will be stored when it is back"


@pytest.fixture
def postgres_proxy(postgres_url) -> Iterator[tuple[FaultProxy, str]]:
    """The test's PostgreSQL schema through a proxy that can forward, refuse or black-hole."""
    proxy = FaultProxy(sqlalchemy.make_url(POSTGRES_URL).port or 5432)
    yield proxy, proxy.url_for(postgres_url)
    proxy.close()


def test_a_stalled_database_is_stored_later_within_the_job_timeout(
    tmp_path, private_redis, ollama, processes, postgres_proxy
):
    """Before: the first answer after the stall waited in the history write for the job's whole time limit
    (RQ's timeout, caught as one more history error, made it "stored later" at 24 s of 20); the next one
    hung in the outbox's flush until its own timeout, which the flush swallowed, then in its own write with
    no timeout left: no answer after 90 s. Now each answer waits for the database at most
    HISTORY_TIMEOUT_S, and everything is stored, in order, once the database answers again."""
    proxy, url = postgres_proxy
    limits = {"JOB_TIMEOUT_S": "30", "HISTORY_TIMEOUT_S": "3"}  # the asker sets the job's limit, the worker its own
    settings = worker_settings(tmp_path, private_redis, ollama, database_url=url)
    worker = start_worker(processes, settings, **limits)
    wait(lambda: serving(settings), what="the worker")
    assert ask(settings, "Say one.", **limits).returncode == 0
    proxy.black_hole()
    for prompt in ("Say two.", "Say three."):
        stalled = ask(settings, prompt, **limits)
        assert stalled.returncode == 0, stalled.stderr
        assert "Paris is the capital of France." in stalled.stdout and STORED_LATER in stalled.stdout
    proxy.forward()
    assert STORED_LATER not in ask(settings, "Say four.", **limits).stdout
    prompts = [row.prompt for row in HistoryStore.open(url).recent("cli", str(os.getuid()))]
    assert prompts == ["Say four.", "Say three.", "Say two.", "Say one."]
    err = stop(worker)
    assert worker.returncode == 0, err
    assert "did not answer within 3.0 s" in err


def test_a_front_end_on_a_stalled_database_says_so_in_one_line(tmp_path, postgres_proxy):
    """`joulebot history` on a database that accepts the connection and never answers: libpq's connect
    timeout (HISTORY_TIMEOUT_S) ends the wait with one line, exit 2 (before: no bound at all)."""
    proxy, url = postgres_proxy
    proxy.black_hole()
    settings = make_settings(tmp_path / "data", database_url=url)
    proc = run_cli(settings, "history", timeout=120, HISTORY_TIMEOUT_S="2")
    assert proc.returncode == 2, proc.stderr
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith("joulebot: DATABASE_URL: the history database") and "cannot be opened" in line


def test_every_history_wait_has_the_drivers_own_bound(tmp_path, postgres_url):
    """What PostgreSQL and SQLite are told, read back from the servers: a statement timeout, keepalives and
    a connect timeout (with the URL's own options kept), and SQLite's busy wait."""
    engine = make_engine(postgres_url, timeout_s=4)
    with engine.connect() as connection:
        shown = {name: connection.exec_driver_sql(f"SHOW {name}").scalar() for name in ("statement_timeout",)}
        schema = connection.exec_driver_sql("SHOW search_path").scalar()
        info = connection.connection.dbapi_connection.info.get_parameters()  # type: ignore[union-attr]
    engine.dispose()
    assert shown == {"statement_timeout": "4s"}
    assert schema == sqlalchemy.make_url(postgres_url).query["options"].split("=", 1)[1], "the URL's options stay"
    assert info["connect_timeout"] == "4" and info["keepalives"] == "1" and info["tcp_user_timeout"] == "4000"
    sqlite = make_engine(f"sqlite:///{tmp_path / 'h.sqlite3'}", timeout_s=4)
    with sqlite.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() == 4000
    sqlite.dispose()
