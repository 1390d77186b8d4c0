"""The history database: its engine (SQLite's pragmas), its schema brought up to date by Alembic, and
the one error a front end shows when it cannot be opened or read."""

from __future__ import annotations

import fcntl
import functools
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, and_, event, text
from sqlalchemy import true as sa_true
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql import ColumnElement
from sqlmodel import create_engine

from joulebot.config.files import private_file, private_umask
from joulebot.history import bounds

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


class HistoryUnavailable(RuntimeError):
    """History cannot be opened or read; `str()` is one line, without credentials. `empty`: there is
    simply no history yet (the dashboard says how to make some)."""

    def __init__(self, message: str, empty: bool = False) -> None:
        super().__init__(message)
        self.empty = empty


def make_engine(url: str, timeout_s: float = bounds.DEFAULT_TIMEOUT_S) -> Engine:
    """An engine whose every wait is bounded by `timeout_s` where the driver can bound it (`bounds`)."""
    if url.startswith("sqlite:///") and url != "sqlite:///:memory:":
        private_file(Path(url.removeprefix("sqlite:///")))  # 0600; SQLite gives its journals the same mode
        # The worker writes while bots read: wait for the lock (bounded) instead of failing at once.
        engine = create_engine(url, connect_args=bounds.connect_args(url, timeout_s))
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    engine = create_engine(url, pool_pre_ping=True, connect_args=bounds.connect_args(url, timeout_s))
    bounds.track(engine)
    return engine


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    """WAL with synchronous=NORMAL: a commit appends to the log without waiting for the disk.

    Readers (the bots) no longer block the writer (the worker), and a commit costs ~1 ms
    instead of ~2 ms (~20 ms on a busy machine). Durability: an application crash loses
    nothing; a power loss or OS crash can lose the last commits since the previous
    checkpoint (the database itself stays consistent). See README "Configuration".
    """
    cursor = dbapi_connection.cursor()
    try:
        if cursor.execute("PRAGMA journal_mode").fetchone()[0] != "memory":  # :memory: has no WAL
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA secure_delete=ON")  # deleted words are zeroed, not left in free space (privacy.py)
    finally:
        cursor.close()


def starting_with(dialect: str, column: Any, prefix: str) -> ColumnElement[bool]:
    """`column` starts with `prefix` (case-sensitive), in a form each database answers from its index.

    SQLite uses an index for a range, not for LIKE (which it compares case-insensitively): the
    range holds exactly the strings starting with `prefix` in its binary order. PostgreSQL uses
    the request id's pattern index (migration 0021) for LIKE whatever the database's collation.
    """
    if not prefix:
        return sa_true()
    if dialect != "sqlite":
        return column.startswith(prefix, autoescape=True)
    last = ord(prefix[-1]) + 1
    last += 0x800 if 0xD800 <= last <= 0xDFFF else 0  # past the surrogates, which UTF-8 cannot hold
    if last > 0x10FFFF:
        return column >= prefix
    return and_(column >= prefix, column < prefix[:-1] + chr(last))


def alembic_config() -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


@functools.cache
def head_revision() -> str | None:
    """The newest migration, read from the scripts' own `revision` and `down_revision` lines
    (None unless exactly one is newest: then Alembic decides, and refuses several heads)."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for script in (MIGRATIONS / "versions").glob("*.py"):
        source = script.read_text(encoding="utf-8")
        revision = re.search(r"^revision\s*=\s*[\"']([^\"']+)[\"']", source, re.MULTILINE)
        parent = re.search(r"^down_revision\s*=\s*[\"']([^\"']+)[\"']", source, re.MULTILINE)
        if revision:
            revisions.add(revision[1])
        if parent:
            parents.add(parent[1])
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 else None


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at (None: no schema yet, or it cannot be read)."""
    try:
        with engine.connect() as connection:
            return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
    except DBAPIError:
        return None


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest revision (Alembic), from empty or from any older one.

    A database already at the newest revision is left alone without importing Alembic: a quarter
    of a second at every start of a worker, a bot or `joulebot stats`."""
    if head_revision() is not None and current_revision(engine) == head_revision():
        return
    config = alembic_config()
    if engine.url.get_backend_name() == "sqlite" and engine.url.database:
        lock_path = Path(f"{engine.url.database}.migrate-lock")
        # SQLite has no advisory locks: a file lock across processes.
        with private_umask(), open(lock_path, "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            _upgrade(config, engine)
    else:
        _upgrade(config, engine)


def _upgrade(config: Config, engine: Engine) -> None:
    from alembic import command

    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":  # a migration may run long; nobody waits on it for an answer
            connection.exec_driver_sql("SET LOCAL statement_timeout = 0")
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
