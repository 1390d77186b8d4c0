"""What every test shares about its environment: the real servers' URLs, whether this is CI,
settings for a test's own data directory and box, a fresh PostgreSQL schema, and the `joulebot`
command run as a subprocess with those settings."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy

from joulebot.config import Settings

REDIS_URL = os.environ.get("JOULEBOT_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
POSTGRES_URL = os.environ.get("JOULEBOT_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
# Environment variables that would point a test at something other than its own stack.
CONFIG_VARS = ("REDIS_URL", "DATABASE_URL", "JOULEBOT_DATA_DIR", "QUEUE_NAME", "METERS", "DEFAULT_MODEL", "BOX_NAME")


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
