"""What a user may ask of their own words, and what retention does to everyone's: forgetting, expiry
after a number of days, and the export of a user's exchanges. The figures stay for the statistics,
anonymous.

Blanking a row's words is not enough on its own: both databases keep the old contents.

- SQLite overwrites a row in place, but the old contents stay in the page's free space (and in
  freed overflow pages) unless `secure_delete` is on (Debian's build has it on, others do not:
  engine.py sets it); every page image written since the last checkpoint, the original insert
  included, stays in the `-wal` file until a checkpoint truncates it. So a forget or retention
  ends with `wal_checkpoint(TRUNCATE)`.
- PostgreSQL writes a new row version on UPDATE; the old one (a dead tuple, its TOASTed values
  too) stays readable in the table's pages until VACUUM removes it. A forget ends with a plain
  VACUUM of the tables it changed: afterwards no row version holds the words, for any query or
  snapshot, and the space is free for reuse. VACUUM does not zero that space (the bytes stay in
  the data files until new rows overwrite them), and the write-ahead log, replicas and backups
  keep their copies until recycled; see README "Forgetting".
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, delete, select, text, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql import ColumnElement

from joulebot.history.budgets import carry_forgotten
from joulebot.history.exchanges import EXCHANGES, MESSAGES, as_exchanges, of_user
from joulebot.history.tables import Exchange
from joulebot.history.users import USERS

log = logging.getLogger(__name__)

X = EXCHANGES.c
CHANGED_TABLES = ("exchanges", "users")  # what a forget changes: the words, the user's choices and system prompt


def scrubbed(result: dict) -> dict:
    """A stored Result without its words (prompt, answer, reasoning, who asked and where) and without
    what names its images; its figures kept."""
    request = dict(result.get("request", {}))
    images = unnamed(request.get("images"))
    request.update(prompt="", user_id="", chat_id=None, system=None, turns=[], images=images or [])
    return {**result, "request": request, "answer": "", "reasoning": "", "hint": None}


def unnamed(images: list | None) -> list | None:
    """Images as a forget leaves them: their file names and hashes gone (a hash proves which photo was
    sent to anyone holding it), their dimensions, byte size and format kept for the statistics."""
    if not images:
        return images
    return [{**image, "name": "", "sha256": ""} for image in images]


def _unshow(connection: Connection, where: ColumnElement[bool]) -> None:
    """Forget which platform messages showed the exchanges matching `where`: that says who talked in
    which chat."""
    connection.execute(delete(MESSAGES).where(MESSAGES.c.exchange_id.in_(select(X.id).where(where))))


def _scrub(connection: Connection, where: ColumnElement[bool], **also: Any) -> list[str]:
    """Remove the words of the exchanges matching `where`; keep their figures. `also`: more columns to
    set (forgetting unlinks the user). Returns their request ids (what else keeps copies by)."""
    rows = connection.execute(select(X.id, X.request_id, X.result, X.images).where(where)).all()
    if rows:
        words_gone = dict(prompt="", answer="", system_prompt=None, chat_id=None, **also)
        kept: dict[str, Any] = {"result": bindparam("kept"), "images": bindparam("images")}
        statement = update(EXCHANGES).where(X.id == bindparam("row_id")).values(**kept, **words_gone)
        scrubs = [{"row_id": r.id, "kept": scrubbed(r.result), "images": unnamed(r.images)} for r in rows]
        connection.execute(statement, scrubs)
    return [row.request_id for row in rows]


def drop_old_copies(engine: Engine) -> None:
    """After words were deleted: SQLite's WAL checkpointed and truncated, PostgreSQL's dead row
    versions vacuumed away. A failure is logged: the words are deleted either way, and the next
    checkpoint or (auto)vacuum drops the copies."""
    try:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            if engine.dialect.name == "sqlite":
                busy, _, _ = connection.execute(text("PRAGMA wal_checkpoint(TRUNCATE)")).one()
                if busy:
                    log.warning("the history's WAL could not be truncated now (a reader holds it)")
            elif engine.dialect.name == "postgresql":
                for table in CHANGED_TABLES:
                    connection.execute(text(f"VACUUM {table}"))
    except DBAPIError as exc:  # e.g. the database went away just after the forget committed
        log.warning("old copies of forgotten words stay until the next checkpoint or vacuum: %s", exc)


class Privacy:
    """Forgetting, retention and export (a part of HistoryStore)."""

    engine: Engine

    def forget(self, platform: str, platform_user_id: str, day_start: datetime | None = None) -> list[str]:
        """Delete a user's prompts, answers and system prompt (and the database's old copies of them);
        their anonymous measurements stay for the statistics. With `day_start`, the energy of their
        answers since then stays on their row: forgetting does not reset their daily energy budget.

        Returns the request ids of the exchanges scrubbed.
        """
        who = USERS.c.platform == platform, USERS.c.platform_user_id == platform_user_id
        with self.engine.begin() as connection:
            user_id = connection.execute(select(USERS.c.id).where(*who)).scalar()
            if user_id is None:  # nobody by that id: nothing to forget, and no row made for them
                return []
            if day_start is not None:
                carry_forgotten(connection, day_start, user_id, platform, platform_user_id)
            _unshow(connection, X.user_id == user_id)
            request_ids = _scrub(connection, X.user_id == user_id, user_id=None)
            chosen = dict(default_model=None, units=None, box=None, system_prompt=None)
            connection.execute(update(USERS).where(USERS.c.id == user_id).values(chosen))
        drop_old_copies(self.engine)
        return request_ids

    def request_ids_of(self, platform: str, platform_user_id: str) -> list[str]:
        """The request ids of a user's exchanges that still have their words."""
        query = of_user(platform, platform_user_id).where(X.prompt != "").with_only_columns(X.request_id)
        with self.engine.connect() as connection:
            return list(connection.execute(query).scalars())

    def scrub_older_than(self, days: float) -> int:
        """Retention: prompts and answers older than `days` are deleted (and which messages showed them);
        the measurements stay."""
        cutoff = datetime.now(UTC) - timedelta(days=days)
        with self.engine.begin() as connection:
            _unshow(connection, X.started_at < cutoff)
            scrubbed_ids = _scrub(connection, (X.started_at < cutoff) & (X.prompt != ""))
        if scrubbed_ids:
            drop_old_copies(self.engine)
        return len(scrubbed_ids)

    def export(self, platform: str, platform_user_id: str) -> list[dict]:
        """A user's own exchanges as flat rows (for CSV), oldest first."""
        with self.engine.connect() as connection:
            rows = as_exchanges(connection, of_user(platform, platform_user_id))
        keep = [c for c in Exchange.model_fields if c not in ("result", "user_id", "power_trace")]
        return [{c: getattr(row, c) for c in keep} for row in reversed(rows)]
