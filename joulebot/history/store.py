"""Reading and writing history: one HistoryStore per process; it owns the engine.

The store is one object for its callers; each of its responsibilities lives in a module of its own:
engine.py (the engine and migrations), users.py (users and preferences), exchanges.py (exchanges and
conversations), privacy.py (forgetting, retention, export), scores.py (the benchmark's verdicts),
aggregates.py and hint.py (the statistics and the greener-model hint), budgets.py (the energy the
daily budgets count). Every write is a Core transaction.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError

from joulebot.history import bounds
from joulebot.history.aggregates import Statistics
from joulebot.history.budgets import Budgets
from joulebot.history.engine import HistoryUnavailable, make_engine, migrate
from joulebot.history.exchanges import Exchanges
from joulebot.history.privacy import Privacy
from joulebot.history.scores import Scores


class HistoryStore(Exchanges, Privacy, Scores, Statistics, Budgets):
    """Queries over one database. `HistoryStore.open(url)` also brings its schema up to date."""

    def __init__(self, url: str, timeout_s: float = bounds.DEFAULT_TIMEOUT_S) -> None:
        self.engine = make_engine(url, timeout_s)
        self._hint_sums = {}
        self._user_ids = {}
        self._answered = set()

    @classmethod
    def open(cls, url: str, timeout_s: float = bounds.DEFAULT_TIMEOUT_S) -> HistoryStore:
        """A store whose schema is at the newest revision (migrated first if needed)."""
        store = cls(url, timeout_s)
        migrate(store.engine)
        return store


def open_history(
    url: str, redact: Callable[[str], str] = lambda text: text, timeout_s: float = bounds.DEFAULT_TIMEOUT_S
) -> HistoryStore:
    """A HistoryStore for a front end: HistoryUnavailable (one line) instead of a driver's traceback."""
    try:
        return HistoryStore.open(url, timeout_s)
    except (DBAPIError, ArgumentError, OSError) as exc:
        text = str(getattr(exc, "orig", None) or exc).strip()
        reason = text.splitlines()[0] if text else type(exc).__name__
        where = make_url(url).render_as_string(hide_password=True) if "://" in url else url
        raise HistoryUnavailable(redact(f"the history database {where} cannot be opened: {reason}")) from None
