"""Forgetting a user's words, and the copies a database keeps of what it deleted.

Blanking a row's words is not enough on its own: both databases keep the old contents.

- SQLite overwrites a row in place, but the old contents stay in the page's free space (and
  in freed overflow pages) unless `secure_delete` is on; every page image written since the
  last checkpoint, the original insert included, stays in the `-wal` file until a checkpoint
  truncates it. So every connection runs with `secure_delete=ON` (see the store's pragmas) and a
  forget ends with `wal_checkpoint(TRUNCATE)`.
- PostgreSQL writes a new row version on UPDATE; the old one (a dead tuple, its TOASTed
  values too) stays readable in the table's pages until VACUUM removes it. A forget ends with
  a plain VACUUM of the tables it changed: afterwards no row version holds the words, for any
  query or snapshot, and the space is free for reuse. VACUUM does not zero that space (the
  bytes stay in the data files until new rows overwrite them), and the write-ahead log,
  replicas and backups keep their copies until recycled; see README "Forgetting".
"""

from __future__ import annotations

import logging

from sqlalchemy import Engine, delete, text
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session, select

from joulebot.history.tables import Exchange, ExchangeMessage, User

log = logging.getLogger(__name__)

# What a forget changes: the exchanges' words, and the user's own system prompt and choices.
CHANGED_TABLES = ("exchanges", "users")


def request_ids_of(engine: Engine, platform: str, platform_user_id: str) -> list[str]:
    """The request ids of a user's exchanges that still have their words (what else holds copies of)."""
    query = (
        select(Exchange.request_id)
        .join(User, User.id == Exchange.user_id)  # type: ignore[arg-type]
        .where(User.platform == platform, User.platform_user_id == platform_user_id, Exchange.prompt != "")
    )
    with Session(engine) as session:
        return list(session.exec(query).all())


def forget_user(engine: Engine, platform: str, platform_user_id: str) -> list[str]:
    """Delete a user's prompts, answers and system prompt; their anonymous measurements stay.

    Returns the request ids of the exchanges scrubbed. No user row is made for an unknown id.
    """
    with Session(engine) as session:
        query = select(User).where(User.platform == platform, User.platform_user_id == platform_user_id)
        user = session.exec(query).first()
        if user is None:
            return []
        theirs = select(Exchange.id).where(Exchange.user_id == user.id)
        session.exec(delete(ExchangeMessage).where(ExchangeMessage.exchange_id.in_(theirs)))  # type: ignore[attr-defined]
        rows = session.exec(select(Exchange).where(Exchange.user_id == user.id)).all()
        for row in rows:
            scrub(row)
            row.user_id = None
            session.add(row)
        user.default_model = user.units = user.box = user.system_prompt = None
        session.add(user)
        session.commit()
        request_ids = [row.request_id for row in rows]
    drop_old_copies(engine)
    return request_ids


def scrub(row: Exchange) -> None:
    """Remove the words of an exchange (prompt, answer, reasoning, who asked); keep its figures."""
    result = dict(row.result)
    request = dict(result.get("request", {}))
    request.update(prompt="", user_id="", chat_id=None, system=None, turns=[])
    result.update(request=request, answer="", reasoning="", hint=None)
    row.prompt, row.answer, row.result = "", "", result
    row.system_prompt = row.chat_id = None


def drop_old_copies(engine: Engine) -> None:
    """After words were deleted: SQLite's WAL checkpointed and truncated, PostgreSQL's dead row
    versions vacuumed away. A failure is logged: the words are deleted either way, and the next
    checkpoint or (auto)vacuum drops the copies."""
    dialect = engine.dialect.name
    try:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            if dialect == "sqlite":
                busy, _, _ = connection.execute(text("PRAGMA wal_checkpoint(TRUNCATE)")).one()
                if busy:
                    log.warning("the history's WAL could not be truncated now (a reader holds it)")
            elif dialect == "postgresql":
                for table in CHANGED_TABLES:
                    connection.execute(text(f"VACUUM {table}"))
    except DBAPIError as exc:  # e.g. the database went away just after the forget committed
        log.warning("old copies of forgotten words stay until the next checkpoint or vacuum: %s", exc)
