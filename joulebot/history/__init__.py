"""History: users, their preferences, every exchange with its measurements, and the statistics over them."""

from joulebot.history.engine import HistoryUnavailable
from joulebot.history.store import HistoryStore, open_history

__all__ = ["HistoryStore", "HistoryUnavailable", "open_history"]
