"""A user's own exchanges, read-only: the thread a question continues (the API's `joulebot.parent_id`) and
what the web chat shows its user (their answers, the tips of their conversations).

Every lookup names the user (platform and platform user id) and finds nothing of anyone else's: an
answer id that is not theirs reads as no answer at all. HistoryUnavailable when history cannot answer.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from sqlalchemy import Connection

from joulebot.history.exchanges import EXCHANGES, as_exchanges, of_user, thread_of
from joulebot.history.tables import Exchange
from joulebot.web.history_view import HistoryView

T = TypeVar("T")
RECENT = 200  # how many of a user's latest answers the list of their conversations looks through


class OwnHistory:
    def __init__(self, view: HistoryView) -> None:
        self.view = view

    def exchange(self, platform: str, user: str, exchange_id: int) -> Exchange | None:
        """The user's answer `exchange_id`; None if there is none of theirs (or no history yet)."""
        return self._or_none(lambda c: _own(c, platform, user, exchange_id))

    def thread(self, platform: str, user: str, exchange_id: int) -> list[Exchange] | None:
        """The user's answer and those it continued, oldest first; None if the answer is not theirs."""

        def query(connection: Connection) -> list[Exchange] | None:
            last = _own(connection, platform, user, exchange_id)
            if last is None:
                return None
            chain = thread_of(connection, exchange_id)
            return [e for e in chain if e.user_id == last.user_id] or None  # only ever theirs

        return self._or_none(query)

    def tips(self, platform: str, user: str, limit: int = 30) -> list[Exchange]:
        """The user's latest answers that nothing continues yet (the end of each conversation and of each
        branch), newest first. An answer is newer than the one it continues, so among the latest
        RECENT answers the ones continued are known."""
        recent = self._or_none(lambda c: as_exchanges(c, of_user(platform, user).limit(RECENT))) or []
        continued = {e.parent_id for e in recent}
        return [e for e in recent if e.id not in continued][:limit]

    def _or_none(self, query: Callable[[Connection], T]) -> T | None:
        return self.view.read_or(query, None)  # no history yet: nothing of anyone's


def _own(connection: Connection, platform: str, user: str, exchange_id: int) -> Exchange | None:
    found = as_exchanges(connection, of_user(platform, user).where(EXCHANGES.c.id == exchange_id))
    return found[0] if found else None
