"""The one object a chat bot talks to: the queue client and the history it shares with the parts
of a chat front end, each a module of its own — asking (a message becomes Requests on the queue),
following (the Results back, and what is still owed), conversations, preferences and system
prompts, cancelling, the read-only reports, and the daily energy budgets."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from joulebot.chat.asking import Asking
from joulebot.chat.budgets import EnergyBudgets
from joulebot.chat.cancelling import Cancelling
from joulebot.chat.conversations import Conversations
from joulebot.chat.following import Following
from joulebot.chat.preferences import Preferences
from joulebot.chat.reports import Reports
from joulebot.config import Settings
from joulebot.history import open_history
from joulebot.queueing.client import QueueClient
from joulebot.queueing.deliveries import DeliveryBook
from joulebot.queueing.follower import Follower

T = TypeVar("T")
DELIVERY_THREADS = 2  # the blocking bits of delivering an answer (a Redis write or two, a history row)


class ChatService:
    def __init__(self, settings: Settings, platform: str) -> None:
        self.settings, self.platform = settings, platform
        self.client = QueueClient(settings)
        # HistoryUnavailable: one line
        self.history = open_history(settings.sqlalchemy_url, settings.redact, settings.history_timeout_s)
        self.deliveries = DeliveryBook(self.client.connection, platform)
        self.preferences = Preferences(settings, platform, self.client, self.history, self.deliveries)
        self.budgets = EnergyBudgets(settings, self.history)
        self.asking = Asking(settings, platform, self.client, self.deliveries, self.preferences, self.budgets)
        self.follower = Follower(settings)  # one thread and connection for every answer this process waits for
        self.following = Following(self.follower, self.deliveries)
        self.conversations = Conversations(settings, platform, self.client.connection, self.history)
        self.cancelling = Cancelling(self.client, self.deliveries)
        self.reports = Reports(settings, platform, self.client, self.history, self.preferences, self.budgets)
        self._delivery_pool = ThreadPoolExecutor(DELIVERY_THREADS, thread_name_prefix="joulebot-delivery")

    async def delivering(self, work: Callable[..., T], *args: object) -> T:
        """Run a blocking step of delivering an answer on threads of its own: a final answer never
        waits behind the questions still arriving (they use the event loop's default executor)."""
        call = functools.partial(work, *args)
        return await asyncio.get_running_loop().run_in_executor(self._delivery_pool, call)
