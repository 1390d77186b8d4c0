"""Forgetting a user: their words out of history and out of the queue's Redis, or nothing at all."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import NamedTuple

from joulebot.attachments.kept import forget_kept_images
from joulebot.chat import preference_cache
from joulebot.chat.budgets import utc_day
from joulebot.history import HistoryStore
from joulebot.number_format import counted
from joulebot.queueing.client import QueueClient, QueueUnavailable


class Forgotten(NamedTuple):
    exchanges: int  # whose prompts and answers were deleted
    images: int  # kept images deleted (KEEP_IMAGES)
    queue_left: int = 0  # answers stored meanwhile whose queue copies stayed: Redis stopped answering

    def said(self) -> str:
        """'1 exchange', '3 exchanges' or '3 exchanges and 2 kept images', and what the queue kept."""
        images = f" and {counted(self.images, 'kept image')}" if self.images else ""
        left = ""
        if self.queue_left:  # history no longer links them to the user: a second forget would not find them
            left = f" (the queue stopped answering: its copies of {counted(self.queue_left, 'answer')} stored "
            left += "meanwhile stay until they expire, RESULT_TTL_S)"
        return f"{counted(self.exchanges, 'exchange')}{images}{left}"

    def told(self, waiting: int, again: str) -> str:
        """What the user is told: what was deleted, what stays, and that the questions still being answered
        (`waiting`) are stored when answered, so that `again` (how they forget) is worth doing then."""
        text = f"Deleted the prompts and answers of {self.said()}. "
        text += "Their anonymous energy figures stay in the statistics."
        if waiting:
            text += f" {counted(waiting, 'question')} still being answered will be stored when answered: "
            text += f"{again} again then."
        return text


def forget_user(history: HistoryStore, client: QueueClient, platform: str, user_id: str) -> Forgotten:
    """Delete a user's prompts, answers and kept images wherever joulebot keeps them.

    Redis first: when it does not answer (QueueUnavailable) nothing is deleted yet, so asking again
    works (history alone could not tell later which requests were theirs). Then history and the
    database's old copies, the images kept for them, then Redis again for what was answered in between.
    The energy of the day's answers still counts against the user's daily energy budget.
    """
    earlier = history.request_ids_of(platform, user_id)
    client.forget(earlier, platform, user_id)
    forgotten = history.forget(platform, user_id, utc_day(datetime.now(UTC))[0])
    preference_cache.changed(client.settings, client.connection, platform, user_id)  # their choices were cleared
    images = forget_kept_images(client.settings.data_dir, platform, user_id)
    late = sorted(set(forgotten) - set(earlier))
    try:
        if late:
            client.forget(late, platform, user_id)
    except QueueUnavailable:  # history has forgotten: "nothing was deleted" would be untrue now
        return Forgotten(len(forgotten), images, queue_left=len(late))
    return Forgotten(len(forgotten), images)
