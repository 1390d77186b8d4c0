"""Forgetting a user: their words out of history and out of the queue's Redis, or nothing at all."""

from __future__ import annotations

from joulebot.history import HistoryStore
from joulebot.queueing.client import QueueClient


def forget_user(history: HistoryStore, client: QueueClient, platform: str, user_id: str) -> int:
    """Delete a user's prompts and answers wherever joulebot keeps them; returns how many exchanges.

    Redis first: when it does not answer (QueueUnavailable) nothing is deleted yet, so asking again
    works (history alone could not tell later which requests were theirs). Then history and the
    database's old copies, then Redis again for what was answered in between.
    """
    earlier = history.request_ids_of(platform, user_id)
    client.forget(earlier, platform, user_id)
    forgotten = history.forget(platform, user_id)
    late = sorted(set(forgotten) - set(earlier))
    if late:
        client.forget(late, platform, user_id)
    return len(forgotten)
