"""What every test shares about its environment: the real servers' URLs, whether this is CI,
settings for a test's own data directory and box, a fresh PostgreSQL schema, and the `joulebot`
command run as a subprocess with those settings."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import sqlalchemy

from joulebot.config import Settings

REDIS_URL = os.environ.get("JOULEBOT_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
POSTGRES_URL = os.environ.get("JOULEBOT_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
# Environment variables that would point a test at something other than its own stack.
CONFIG_VARS = ("REDIS_URL", "DATABASE_URL", "JOULEBOT_DATA_DIR", "QUEUE_NAME", "METERS", "DEFAULT_MODEL", "BOX_NAME")


class SystemRedis:
    """The system Redis as this run saw it: whether it answered each test that shares it, and which
    server (its run_id) did, so that a run's last lines tell a server that died or restarted midway."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.servers: list[str] = []  # "run_id (pid N)", in the order first seen
        self.refused = 0
        self._waited_in_vain = False

    def problem(self, wait_s: float) -> Exception | None:
        """None when it answers; else why not, after waiting up to `wait_s` for it (a server restarting).
        Once a wait was in vain, later tests wait only a moment."""
        deadline = time.monotonic() + (min(wait_s, 2.0) if self._waited_in_vain else wait_s)
        while isinstance(answer := self._answer(), Exception) and time.monotonic() < deadline:
            time.sleep(0.5)
        if isinstance(answer, Exception):
            self.refused += 1
            self._waited_in_vain = wait_s > 0
            return answer
        self._waited_in_vain = False
        return None

    def _answer(self) -> str | Exception:
        """Which server answers ("run_id (pid N)", noted), or why none does."""
        try:
            with redis.Redis.from_url(self.url, socket_connect_timeout=2, socket_timeout=5) as client:
                info = client.info("server")
        except redis.RedisError as exc:
            return exc
        server = f"{info['run_id'][:12]} (pid {info['process_id']})"
        if server not in self.servers:
            self.servers.append(server)
        return server

    def lifetime(self) -> str | None:
        """One line on the server(s) seen and whether one answers now; None if no test used it."""
        if not self.servers and not self.refused:
            return None
        answer = self._answer()
        now = f"does not answer ({answer})" if isinstance(answer, Exception) else "answers"
        seen = ", then ".join(self.servers) or "none"
        instead = "" if IN_CI or not self.refused else " (they used this run's own redis-server)"
        return f"system Redis at {self.url}: servers seen {seen}; refused {self.refused} test(s){instead}; now {now}"


system_redis = SystemRedis(REDIS_URL)


def server_missing(what: str, exc: Exception) -> None:
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


def postgres_schema() -> Iterator[str]:
    """A fresh schema's URL until the generator is closed (for fixtures of any scope)."""
    schema = f"jb_{uuid.uuid4().hex[:10]}"
    try:
        engine = sqlalchemy.create_engine(POSTGRES_URL)
        with engine.begin() as connection:
            connection.execute(sqlalchemy.text(f"CREATE SCHEMA {schema}"))
    except sqlalchemy.exc.OperationalError as exc:
        server_missing("PostgreSQL at " + POSTGRES_URL, exc)
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
