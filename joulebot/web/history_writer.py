"""The web app's one writable HistoryStore, for what a chat page's user changes in history themselves (a
forget), through the history's own API.

It is opened at its first use, not with the app: the dashboard starts, reads and stays read-only without
it (looking at an empty data directory creates no SQLite file), and a history database that is away when
the app starts is no reason not to serve. It is opened as every front end opens history
(`open_history`: migrated to this version's schema, one line when it cannot be). The app's lifespan
closes it.
"""

from __future__ import annotations

import threading

from joulebot.config import Settings
from joulebot.history import HistoryStore, open_history


class HistoryWriter:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._store: HistoryStore | None = None
        self._lock = threading.Lock()  # requests run in the thread pool: the store is opened once

    def store(self) -> HistoryStore:
        """Blocking: the store, opened at the first call; HistoryUnavailable (one line) when it cannot be."""
        with self._lock:
            if self._store is None:
                settings = self.settings
                self._store = open_history(settings.sqlalchemy_url, settings.redact, settings.history_timeout_s)
            return self._store

    def close(self) -> None:
        with self._lock:
            if self._store is not None:
                self._store.engine.dispose()
                self._store = None
