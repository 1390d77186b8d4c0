"""SQLModel tables and queries: users, their preferences, every exchange."""

from joulebot.history.store import HistoryStore, HistoryUnavailable, open_history

__all__ = ["HistoryStore", "HistoryUnavailable", "open_history"]
