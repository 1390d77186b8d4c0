"""Who the terminal user is, and the history store of the commands that read it."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING

from joulebot.cli.console import fail
from joulebot.config import Settings

if TYPE_CHECKING:
    from joulebot.history import HistoryStore


def cli_user() -> str:
    """The terminal user is the OS account: its numeric id, which the environment cannot change ($LOGNAME can)."""
    return str(os.getuid())


@contextlib.contextmanager
def history_errors() -> Iterator[None]:
    """A history database that cannot be opened: one line naming DATABASE_URL, exit 2."""
    from joulebot.history import HistoryUnavailable

    try:
        yield
    except HistoryUnavailable as exc:
        raise fail(f"DATABASE_URL: {exc}", 2) from None


def open_store(settings: Settings) -> HistoryStore:
    """The history store for a command that reads it."""
    from joulebot.history import open_history

    with history_errors():
        return open_history(settings.sqlalchemy_url, settings.redact, settings.history_timeout_s)
