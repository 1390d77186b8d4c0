"""Shared fixtures. The real Redis and PostgreSQL servers are used when they answer;
in CI (`CI=true`) a missing server fails the test instead of skipping it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import sqlalchemy
from processes import Processes
from standins import OllamaStandIn, PrivateRedis

from joulebot.config import Settings
from joulebot.queueing.embedded import stop_embedded_stack

REDIS_URL = os.environ.get("JOULEBOT_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
POSTGRES_URL = os.environ.get("JOULEBOT_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
# Environment variables that would point a test at something other than its own stack.
CONFIG_VARS = ("REDIS_URL", "DATABASE_URL", "JOULEBOT_DATA_DIR", "QUEUE_NAME", "METERS", "DEFAULT_MODEL", "BOX_NAME")


def _server_missing(what: str, exc: Exception) -> None:
    message = f"{what} is not reachable ({exc})"
    if IN_CI:
        pytest.fail(f"{message}: CI must run this test against the real server")
    pytest.skip(message)


def make_settings(data_dir: Path, **overrides) -> Settings:
    # each test's worker is a box of its own: tests sharing a Redis must not contend for one box lock;
    # its queue is named explicitly, so front ends follow it (fleet tests pass queue_name="" to route)
    box = f"test-box-{uuid.uuid4().hex[:8]}"
    values = {
        "JOULEBOT_DATA_DIR": data_dir,
        "idle_baseline_s": 0.5,
        "idle_settle_s": 0.1,
        "redis_url": "",
        "database_url": "",
        "box_name": box,
        "queue_name": box,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)


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


@pytest.fixture
def system_redis_url() -> Iterator[str]:
    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except redis.RedisError as exc:
        _server_missing("Redis at " + REDIS_URL, exc)
    yield REDIS_URL
    client.close()


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A PostgreSQL URL whose search_path is a fresh schema, dropped afterwards."""
    yield from postgres_schema()


def postgres_schema() -> Iterator[str]:
    """A fresh schema's URL until the generator is closed (for fixtures of any scope)."""
    schema = f"jb_{uuid.uuid4().hex[:10]}"
    try:
        engine = sqlalchemy.create_engine(POSTGRES_URL)
        with engine.begin() as connection:
            connection.execute(sqlalchemy.text(f"CREATE SCHEMA {schema}"))
    except sqlalchemy.exc.OperationalError as exc:
        _server_missing("PostgreSQL at " + POSTGRES_URL, exc)
    yield f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"
    with engine.begin() as connection:
        connection.execute(sqlalchemy.text(f"DROP SCHEMA {schema} CASCADE"))
    engine.dispose()


def cli_env(settings: Settings, **extra: str) -> dict[str, str]:
    """The environment for a `joulebot` subprocess using these settings."""
    env = {k: v for k, v in os.environ.items() if k not in CONFIG_VARS}
    env.update(
        JOULEBOT_DATA_DIR=str(settings.data_dir),
        IDLE_BASELINE_S=str(settings.idle_baseline_s),
        IDLE_SETTLE_S=str(settings.idle_settle_s),
        REDIS_URL=settings.redis_url,
        DATABASE_URL=settings.database_url,
        QUEUE_NAME=settings.queue_name,
        BOX_NAME=settings.box_name,
    )
    env.update(extra)
    return env


def run_cli(settings: Settings, *args: str, timeout: float = 180, **extra_env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "joulebot", *args],
        env=cli_env(settings, **extra_env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


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


@pytest.fixture(params=["sqlite", "postgresql"])
def history_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A history database URL on each backend: a SQLite file, or a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'history.sqlite3'}"
    return request.getfixturevalue("postgres_url")
