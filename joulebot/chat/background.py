"""The chat bots' blocking work (Redis, history) kept off their event loop."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from joulebot.chat.asking import InputError

log = logging.getLogger(__name__)


def spawn(tasks: set[asyncio.Task[None]], coroutine: Coroutine[Any, Any, None], what: str) -> None:
    """Run `coroutine` in the background: referenced in `tasks` until it ends, and its failure logged, not lost."""
    task = asyncio.get_running_loop().create_task(coroutine)
    tasks.add(task)  # a task nobody references can be garbage-collected mid-answer

    def finished(task: asyncio.Task) -> None:
        tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("%s failed", what, exc_info=task.exception())

    task.add_done_callback(finished)


async def text_of(produce: Callable[[], str]) -> str:
    """Run a blocking reply builder (history, catalog) off the event loop; a refusal is its text."""
    try:
        return await asyncio.to_thread(produce)
    except InputError as exc:
        return str(exc)
