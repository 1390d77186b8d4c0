"""Which conversation a chat message continues, and where the next one will.

A reply to one of the bot's answers continues from it (a branch); a private chat continues
its current conversation until /new or CONVERSATION_IDLE_S of silence; a chat the bot made
one conversation (a thread it opened) continues from its latest answer. The pointers live in
Redis (they expire); the answers they point to in history, which checks whose they are.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING

import redis
from sqlalchemy.exc import SQLAlchemyError

from joulebot.attachments.kept import KeptImages
from joulebot.attachments.parts import Attached
from joulebot.attachments.text_files import split_files
from joulebot.chat.asking import InputError
from joulebot.chat.context import Context, ImagesGone, images_again, kept_images
from joulebot.config import Settings
from joulebot.exchange import Result
from joulebot.keys import conversation_key, shared_conversation_key
from joulebot.queueing.deliveries import Delivery

if TYPE_CHECKING:
    from joulebot.history.store import HistoryStore
    from joulebot.history.tables import Exchange

log = logging.getLogger(__name__)

SHARED_CONVERSATION_TTL_S = (
    30 * 24 * 3600
)  # a thread the bot started stays one conversation this long after its last answer


class Conversations:
    def __init__(self, settings: Settings, platform: str, connection: redis.Redis, history: HistoryStore) -> None:
        self.settings, self.platform, self.connection, self.history = settings, platform, connection, history
        self.kept = KeptImages.of(settings)  # earlier questions' images, shown again (None: not kept)
        self.show_again = kept_images(self.kept, platform, history.owner)

    def _pointer(self, chat_id: str, user_id: str) -> str:
        return conversation_key(self.platform, chat_id, user_id)

    def context_for(self, user_id: str, chat_id: str, reply_to: str | None = None, group: bool = False) -> Context:
        """The conversation a message continues.

        A reply to one of the bot's answers continues from that answer (a branch), if that answer
        belongs to this chat and, in a private chat, to this user. Otherwise a private chat
        continues its current conversation (until /new or CONVERSATION_IDLE_S of silence); in a
        group only replies continue. Anything else starts a new conversation: an unknown,
        deleted or foreign message never leaks one.
        """
        exchange = None
        if reply_to is not None:
            exchange = self.history.answer_at(self.platform, chat_id, reply_to)
        elif not group and self.settings.conversation_idle_s > 0:
            raw = self.connection.get(self._pointer(chat_id, user_id))
            if raw:
                exchange = self.history.get(int(json.loads(raw)["exchange_id"]))
        return self._after(exchange, user_id, chat_id, group)

    def _after(self, exchange: Exchange | None, user_id: str, chat_id: str, group: bool) -> Context:
        """Continuing from `exchange` if it belongs to this chat (and, outside groups, to this user); else afresh."""
        if exchange is None or exchange.chat_id != chat_id:
            return Context()
        if not group and self.history.owner(exchange) != user_id:
            return Context()
        thread = self.history.thread(exchange.id)  # type: ignore[arg-type]
        return Context.after(thread, self.show_again) if thread else Context()

    # -- shared conversations: a chat that is one conversation for everyone in it (a thread the bot started) --
    def _shared(self, chat_id: str) -> str:
        return shared_conversation_key(self.platform, chat_id)

    def start_shared(self, chat_id: str) -> None:
        """Make `chat_id` one conversation (before its first answer): every message there continues
        from its latest answer."""
        self.connection.set(self._shared(chat_id), "{}", ex=SHARED_CONVERSATION_TTL_S)

    def shared_context(self, user_id: str, chat_id: str, reply_to: str | None = None) -> Context:
        """Where a message in a shared chat continues: from the answer it replies to (a branch), else
        from the chat's latest answer (none known: afresh, and its answer becomes the latest)."""
        key = self._shared(chat_id)
        self.connection.set(key, "{}", ex=SHARED_CONVERSATION_TTL_S, nx=True)  # remember() updates it
        exchange = self.history.answer_at(self.platform, chat_id, reply_to) if reply_to is not None else None
        raw = self.connection.get(key)
        if exchange is None and raw and (latest := json.loads(raw).get("exchange_id")) is not None:
            exchange = self.history.get(int(latest))
        return self._after(exchange, user_id, chat_id, group=True)

    # -- after an answer -----------------------------------------------------------------------
    def remember(self, delivery: Delivery, results: list[Result]) -> None:
        """After an answer: in a shared chat everyone's next message continues from it; in a private
        chat the asker's does (until idle)."""
        if len(results) != 1 or results[0].exchange_id is None:
            return
        request = results[0].request
        pointer = json.dumps({"conversation_id": request.conversation_id, "exchange_id": results[0].exchange_id})
        if self.connection.set(self._shared(delivery.chat_id), pointer, ex=SHARED_CONVERSATION_TTL_S, xx=True):
            return  # only where the chat is shared already (xx): an answer never makes a chat shared
        if self.settings.conversation_idle_s > 0:
            ttl = max(1, int(self.settings.conversation_idle_s))
            self.connection.set(self._pointer(delivery.chat_id, delivery.user_id), pointer, ex=ttl)

    def note_messages(self, delivery: Delivery, results: list[Result], message_refs: list[str]) -> None:
        """The platform messages that show a delivered answer (the pieces of a long one): a reply to any of
        them continues its conversation. Only a single stored answer has one to continue; if history is
        away, replies to the later pieces start afresh (the first is stored with the exchange)."""
        stored = [r.exchange_id for r in results if r.exchange_id is not None]
        if len(results) != 1 or not stored or not message_refs:
            return
        try:
            self.history.add_messages(self.platform, delivery.chat_id, stored[0], message_refs)
        except SQLAlchemyError as exc:
            log.warning("the messages of exchange %s were not stored: %s", stored[0], type(exc).__name__)

    def new_conversation(self, user_id: str, chat_id: str) -> str:
        self.connection.delete(self._pointer(chat_id, user_id))
        return "🆕 New conversation: your next message starts afresh (earlier answers stay in /history)."

    # -- asking an answer's question again -----------------------------------------------------------
    def answer_id_at(self, chat_id: str, message_ref: str) -> int | None:
        """The exchange whose answer this chat's message shows (None if it shows none)."""
        exchange = self.history.answer_at(self.platform, chat_id, message_ref)
        return exchange.id if exchange is not None else None

    def retry_context(
        self, user_id: str, chat_id: str, exchange_id: int, group: bool = False
    ) -> tuple[str, str, Context, Attached]:
        """(prompt, model, context, its images) to ask an answer's question again, with the same context.

        Only the asker (or, in a group, anyone in that group) may retry an answer; one whose images
        were not kept (KEEP_IMAGES) cannot be asked again without them.
        """
        exchange = self.history.get(exchange_id)
        if exchange is None or not exchange.prompt or exchange.chat_id != chat_id:
            raise InputError("That answer can no longer be retried.")
        if not group and self.history.owner(exchange) != user_id:
            raise InputError("That answer can no longer be retried.")
        try:
            images = images_again(self.kept, self.show_again, exchange)
        except ImagesGone as why:
            message = f"That answer's image cannot be shown again ({why}): send it again to ask about it."
            raise InputError(message) from None
        thread = self.history.thread(exchange.parent_id) if exchange.parent_id is not None else []
        context = Context.after(thread, self.show_again) if thread else Context()
        context.conversation_id = exchange.conversation_id or context.conversation_id
        context.turn = exchange.turn
        context.fixed_system, context.system = True, exchange.system_prompt
        words, files = split_files(exchange.prompt)  # the files again as files: not counted as typed words
        return words, exchange.model, context, Attached(images=images, files=files)
