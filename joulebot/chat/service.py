"""The one object a chat bot talks to: the queue client and the history it shares with the parts
of a chat front end, each a module of its own — asking (a message becomes Requests on the queue),
following (the Results back, and what is still owed), conversations, preferences and system
prompts, cancelling, and the read-only reports."""

from __future__ import annotations

from joulebot.chat.asking import Asking
from joulebot.chat.cancelling import Cancelling
from joulebot.chat.conversations import Conversations
from joulebot.chat.deliveries import DeliveryBook
from joulebot.chat.following import Following
from joulebot.chat.preferences import Preferences
from joulebot.chat.reports import Reports
from joulebot.config import Settings
from joulebot.history import open_history
from joulebot.queueing.client import QueueClient


class ChatService:
    def __init__(self, settings: Settings, platform: str) -> None:
        self.settings, self.platform = settings, platform
        self.client = QueueClient(settings)
        # HistoryUnavailable: one line
        self.history = open_history(settings.sqlalchemy_url, settings.redact, settings.history_timeout_s)
        self.deliveries = DeliveryBook(self.client.connection, platform)
        self.preferences = Preferences(settings, platform, self.client, self.history, self.deliveries)
        self.asking = Asking(settings, platform, self.client, self.deliveries, self.preferences)
        self.following = Following(settings, self.client, self.deliveries)
        self.conversations = Conversations(settings, platform, self.client.connection, self.history)
        self.cancelling = Cancelling(self.client, self.deliveries)
        self.reports = Reports(settings, platform, self.client, self.history, self.preferences)
