"""What a user may ask of their own words, and what retention does to everyone's: forgetting, expiry
after a number of days, and the export of a user's exchanges. The figures stay for the statistics,
anonymous."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, delete, select, update
from sqlalchemy.sql import ColumnElement

from joulebot.history.exchanges import EXCHANGES, MESSAGES, as_exchanges, of_user
from joulebot.history.tables import Exchange
from joulebot.history.users import USERS

X = EXCHANGES.c


def scrubbed(result: dict) -> dict:
    """A stored Result without its words (prompt, answer, reasoning, who asked and where); its figures kept."""
    request = dict(result.get("request", {}))
    request.update(prompt="", user_id="", chat_id=None, system=None, turns=[])
    return {**result, "request": request, "answer": "", "reasoning": "", "hint": None}


def _unshow(connection: Connection, where: ColumnElement[bool]) -> None:
    """Forget which platform messages showed the exchanges matching `where`: that says who talked in
    which chat."""
    connection.execute(delete(MESSAGES).where(MESSAGES.c.exchange_id.in_(select(X.id).where(where))))


def _scrub(connection: Connection, where: ColumnElement[bool], **also: Any) -> int:
    """Remove the words of the exchanges matching `where`; keep their figures. `also`: more columns to
    set (forgetting unlinks the user)."""
    rows = connection.execute(select(X.id, X.result).where(where)).all()
    if rows:
        words_gone = dict(prompt="", answer="", system_prompt=None, chat_id=None, **also)
        statement = update(EXCHANGES).where(X.id == bindparam("row_id")).values(result=bindparam("kept"), **words_gone)
        connection.execute(statement, [{"row_id": row.id, "kept": scrubbed(row.result)} for row in rows])
    return len(rows)


class Privacy:
    """Forgetting, retention and export (a part of HistoryStore)."""

    engine: Engine

    def forget(self, platform: str, platform_user_id: str) -> int:
        """Delete a user's prompts and answers; their anonymous measurements stay for the statistics.

        Returns how many exchanges were scrubbed.
        """
        who = USERS.c.platform == platform, USERS.c.platform_user_id == platform_user_id
        with self.engine.begin() as connection:
            user_id = connection.execute(select(USERS.c.id).where(*who)).scalar()
            if user_id is None:  # nobody by that id: nothing to forget, and no row made for them
                return 0
            _unshow(connection, X.user_id == user_id)
            count = _scrub(connection, X.user_id == user_id, user_id=None)
            chosen = dict(default_model=None, units=None, box=None, system_prompt=None)
            connection.execute(update(USERS).where(USERS.c.id == user_id).values(chosen))
        return count

    def scrub_older_than(self, days: float) -> int:
        """Retention: prompts and answers older than `days` are deleted (and which messages showed them);
        the measurements stay."""
        cutoff = datetime.now(UTC) - timedelta(days=days)
        with self.engine.begin() as connection:
            _unshow(connection, X.started_at < cutoff)
            return _scrub(connection, (X.started_at < cutoff) & (X.prompt != ""))

    def export(self, platform: str, platform_user_id: str) -> list[dict]:
        """A user's own exchanges as flat rows (for CSV), oldest first."""
        with self.engine.connect() as connection:
            rows = as_exchanges(connection, of_user(platform, platform_user_id))
        keep = [c for c in Exchange.model_fields if c not in ("result", "user_id", "power_trace")]
        return [{c: getattr(row, c) for c in keep} for row in reversed(rows)]
