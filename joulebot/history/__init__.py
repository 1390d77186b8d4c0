"""SQLModel tables and queries: users, their preferences, every exchange."""

from joulebot.history.store import HistoryStore

__all__ = ["HistoryStore"]
