"""The Telegram bot (python-telegram-bot 22): message it, get the answer and its energy bill.

Every update is handled concurrently; a question is queued, then followed by
a background task (the process's one follower waits on every answer) that edits its
status message with the answer as it grows (at most one call every 1.5 s per chat,
never the same text, within the bot's budget; a long answer streams on into new
messages, `telegram_stream`) and finally makes those messages show the reply. What
is owed to whom is kept in Redis, so a restarted bot still delivers every answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import logging
import re
from collections.abc import Awaitable, Callable
from urllib.parse import urlparse

import redis
from telegram import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message, Update
from telegram.constants import ChatType, ParseMode
from telegram.error import BadRequest, Forbidden, TelegramError
from telegram.ext import (
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from joulebot.attachments.parts import Attached, AttachmentError, default_question
from joulebot.chat.asking import InputError
from joulebot.chat.background import spawn, text_of
from joulebot.chat.cancelling import CANCELLED
from joulebot.chat.context import Context
from joulebot.chat.help_text import HELP
from joulebot.chat.pacing import INTAKE_AT_ONCE, TELEGRAM_PER_S, Pacer, Pacing
from joulebot.chat.reply import Reply, make_reply
from joulebot.chat.service import ChatService
from joulebot.chat.taking_in import TakingIn
from joulebot.chat.telegram_files import attachments_of, carries_attachment, file_base_url
from joulebot.chat.telegram_format import split_html, to_html
from joulebot.chat.telegram_questions import Albums, mentions
from joulebot.chat.telegram_stream import AnswerMessages, send_piece
from joulebot.config import Settings, SettingsError
from joulebot.queueing.client import JobCancelled, JobError
from joulebot.queueing.deliveries import Delivery

log = logging.getLogger(__name__)

QUEUED = "⏳ queued"
# Telegram's rule for a webhook's secret_token (setWebhook), sent back in X-Telegram-Bot-Api-Secret-Token
WEBHOOK_SECRET = re.compile(r"[A-Za-z0-9_-]{1,256}")
WEBHOOK_SECRET_RULE = "1-256 characters of A-Z, a-z, 0-9, _ and - (a long random one)"
GROUP_ADMINS = ("creator", "administrator")  # ChatMember.status of a group's owner and its administrators


def cancel_button(request_id: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup([[InlineKeyboardButton("Cancel", callback_data=f"cancel:{request_id}")]])


def retry_button(exchange_id: int) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup([[InlineKeyboardButton("🔄 Retry", callback_data=f"retry:{exchange_id}")]])


def reply_pieces(reply: Reply) -> list[str]:
    """The reply as Telegram HTML messages: the model's words rendered, our own texts escaped."""
    markup = "\n\n".join(
        to_html(text) if is_model else html.escape(text, quote=False) for text, is_model in reply.parts()
    )
    return split_html(markup)


def _message(update: Update) -> Message:
    """The update's message: the guard and the handlers' filters let only updates with one through."""
    if update.effective_message is None:
        raise LookupError("update without a message")
    return update.effective_message


def _user_id(update: Update) -> str:
    if update.effective_user is None:  # the guard drops these
        raise LookupError("update without a sender")
    return str(update.effective_user.id)


def _query(update: Update) -> CallbackQuery:
    if update.callback_query is None:  # registered for callback queries only
        raise LookupError("update without a callback query")
    return update.callback_query


def webhook_refusal(settings: Settings) -> str | None:
    """Why webhook mode cannot start with these settings (None: it can, or it is not webhook mode).

    The listener takes updates from whoever reaches it: without Telegram's secret header, anyone
    who finds the URL could post a `/forget` or a button press as any user."""
    if not settings.telegram_webhook_url:
        return None
    secret = settings.telegram_webhook_secret.get_secret_value()
    if not secret:
        return (
            "TELEGRAM_WEBHOOK_URL is set but TELEGRAM_WEBHOOK_SECRET is not: without it anyone who finds the "
            f"webhook can act as any user; set it to {WEBHOOK_SECRET_RULE}"
        )
    if not WEBHOOK_SECRET.fullmatch(secret):
        return f"TELEGRAM_WEBHOOK_SECRET must be {WEBHOOK_SECRET_RULE}"
    return None


class TelegramBot:
    def __init__(self, settings: Settings) -> None:
        refusal = webhook_refusal(settings)
        if refusal:
            raise SettingsError(refusal)
        self.settings = settings
        self.chat = ChatService(settings, "telegram")
        self.admins = Settings.id_set(settings.telegram_admins)
        self.allowed = Settings.id_set(settings.telegram_allowed_users)
        self._tasks: set[asyncio.Task] = set()
        self._intake = asyncio.Semaphore(INTAKE_AT_ONCE)  # questions taken in at once; the rest wait their turn
        self._taking_in = TakingIn()  # one question of a user at a time: the pending limit holds
        self._pacing = Pacing(Pacer(TELEGRAM_PER_S))  # each chat's last call, the bot's budget: finals first
        self.albums = Albums(self._on_messages, lambda gathering: spawn(self._tasks, gathering, "an album"))

    # -- the application ---------------------------------------------------
    def application(self) -> Application:
        token = self.settings.telegram_bot_token.get_secret_value()
        if not token:
            raise RuntimeError("TELEGRAM_BOT_TOKEN is not set")
        app = (
            ApplicationBuilder()
            .token(token)
            .base_url(self.settings.telegram_api_base_url)
            .base_file_url(file_base_url(self.settings))
            # every update at once (python-telegram-bot's 256): a user's own questions waiting their turn
            # must not hold the slots of everyone else's; intake itself is bounded by `_intake`
            .concurrent_updates(True)
            .post_init(self._resume)
            .build()
        )
        app.add_handler(CommandHandler(["start", "help"], self._guarded(self._cmd_start)))
        app.add_handler(CommandHandler("ask", self._guarded(self._cmd_ask)))
        app.add_handler(CommandHandler("compare", self._guarded(self._cmd_compare)))
        app.add_handler(CommandHandler("model", self._guarded(self._cmd_model)))
        app.add_handler(CommandHandler("models", self._guarded(self._cmd_models)))
        app.add_handler(CommandHandler("units", self._guarded(self._cmd_units)))
        app.add_handler(CommandHandler("history", self._guarded(self._cmd_history)))
        app.add_handler(CommandHandler("stats", self._guarded(self._cmd_stats)))
        app.add_handler(CommandHandler("boxes", self._guarded(self._cmd_boxes)))
        app.add_handler(CommandHandler("box", self._guarded(self._cmd_box)))
        app.add_handler(CommandHandler("forget", self._guarded(self._cmd_forget)))
        app.add_handler(CommandHandler("new", self._guarded(self._cmd_new)))
        app.add_handler(CommandHandler("system", self._guarded(self._cmd_system)))
        app.add_handler(CommandHandler("cancel", self._guarded(self._cmd_cancel)))
        app.add_handler(CallbackQueryHandler(self._guarded(self._on_button)))
        app.add_handler(MessageHandler(filters.TEXT & ~filters.COMMAND, self._guarded(self._on_text)))
        app.add_handler(MessageHandler(filters.PHOTO | filters.Document.ALL, self._guarded(self._on_text)))
        app.add_error_handler(self._on_error)
        return app

    def run(self) -> None:
        app = self.application()
        if self.settings.telegram_webhook_url:
            app.run_webhook(
                listen=self.settings.telegram_webhook_listen,
                port=self.settings.telegram_webhook_port,
                url_path=urlparse(self.settings.telegram_webhook_url).path.lstrip("/"),
                webhook_url=self.settings.telegram_webhook_url,
                secret_token=self.settings.telegram_webhook_secret.get_secret_value(),  # checked on every request
                allowed_updates=["message", "callback_query"],
            )
        else:
            app.run_polling(allowed_updates=["message", "callback_query"])

    async def _resume(self, app: Application) -> None:
        """Deliver what a previous run of the bot still owed."""
        try:
            await asyncio.to_thread(self.chat.asking.ensure_queue)
        except JobError as exc:
            log.warning("%s; pending answers are resumed at the next start", exc)
        pending = await asyncio.to_thread(self.chat.following.pending)
        for delivery in pending:
            self._background(self._follow(app.bot, delivery))
        if pending:
            log.info("resuming %d pending answers", len(pending))

    async def _on_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        log.error("error while handling an update: %s", context.error, exc_info=context.error)
        if isinstance(update, Update) and update.effective_message:
            with contextlib.suppress(TelegramError):
                await update.effective_message.reply_text("⚠️ Something went wrong on our side. Please try again.")

    def _guarded(self, handler: Callable[[Update, ContextTypes.DEFAULT_TYPE], Awaitable[None]]):
        """Only allowed users get through; a refusal is a friendly message."""

        async def guarded(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
            user = update.effective_user
            if user is None or user.is_bot:
                return
            if self.allowed and str(user.id) not in self.allowed | self.admins:
                if update.effective_message:
                    await update.effective_message.reply_text("Sorry, this joulebot only answers invited users.")
                return
            await handler(update, context)

        return guarded

    # -- asking --------------------------------------------------------------
    async def _ask(
        self,
        message: Message,
        user_id: str,
        prompt: str,
        models: list[str | None],
        context: Context | None = None,
        attached: Attached | None = None,
        parts: list[Message] | None = None,
    ) -> None:
        """`parts`: the messages whose photos and documents the question carries (an album's; default:
        `message`), unless `attached` already says what it carries."""
        async with self._taking_in(user_id), self._intake:  # checked and recorded before the user's next question
            chat_id = str(message.chat_id)
            group = message.chat.type != ChatType.PRIVATE
            parts = parts or [message]
            try:
                if attached is None and any(carries_attachment(m) for m in parts):
                    attached = await attachments_of(parts, self.settings)
                    prompt = prompt or default_question(attached)  # a photo or file without a caption
                requests = await asyncio.to_thread(
                    self.chat.asking.prepare, user_id, chat_id, prompt, models, context, group, None, attached
                )
            except (InputError, AttachmentError) as exc:
                await message.reply_text(str(exc))
                return
            bot, quote = message.get_bot(), str(message.message_id) if group else None
            status = await send_piece(bot, chat_id, QUEUED, buttons=cancel_button(requests[0].id), reply_to=quote)
            if status.done and status.message_id is None:  # the chat refuses the bot's messages: nobody to answer
                return
            if not status.done:  # still failing after the retries: the question is queued all the same
                log.warning("no status message in chat %s; the answer will come as a new message", chat_id)
            try:
                delivery = await asyncio.to_thread(self.chat.asking.submit, requests, status.message_id)
            except JobError as exc:
                await self._send(bot, chat_id, html.escape(f"⚠️ {exc}", quote=False), status.message_id)
                return
        self._background(self._follow(bot, delivery, QUEUED if status.message_id else ""))

    def _background(self, coroutine) -> None:
        spawn(self._tasks, coroutine, "following an answer")

    async def _follow(self, bot, delivery: Delivery, shown: str = "") -> None:
        """Stream the answer into the status message (and the messages it continues in), then the reply."""

        async def keep(message_ids: list[str]) -> None:  # a restarted bot must edit them, not leave them stale
            delivery.more_message_ids = message_ids[1:]
            await self.chat.delivering(self.chat.following.save, delivery)

        first = [delivery.status_message_id] if delivery.status_message_id is not None else []
        messages = AnswerMessages(
            bot,
            delivery.chat_id,
            [*first, *delivery.more_message_ids],
            self._pacing,
            shown,
            cancel_button(delivery.key),
            keep,
        )
        results = []
        try:
            results = await self.chat.following.follow(delivery, messages.update)
        except JobCancelled:
            reply = Reply([], CANCELLED)
        except JobError as exc:
            reply = Reply([], f"⚠️ {exc}")
        else:
            budget = await self.chat.delivering(self.chat.budgets.day_lines, self.chat.platform, delivery.user_id)
            reply = make_reply(results, delivery.units, self.settings.public_url, budget)
        stored = [r.exchange_id for r in results if r.exchange_id is not None]
        markup = retry_button(stored[0]) if len(results) == 1 and stored else None
        # before the user can see it and reply:
        await self.chat.delivering(self.chat.conversations.remember, delivery, results)
        if len(messages.ids) > 1:  # the pieces streamed so far: replies to them continue this answer too
            await self.chat.delivering(self.chat.conversations.note_messages, delivery, results, list(messages.ids))
        streamed = list(messages.ids)
        delivered = await messages.finish(reply_pieces(reply), markup)
        if messages.ids != streamed[: len(messages.ids)]:  # pieces sent (or moved) by the final delivery
            await self.chat.delivering(self.chat.conversations.note_messages, delivery, results, list(messages.ids))
        if delivered:
            await self.chat.delivering(self.chat.following.delivered, delivery)
        # else: it stays owed in Redis, and the next start of the bot sends it again

    async def _send(self, bot, chat_id: str, piece: str, edit_message_id: str | None) -> bool:
        """One piece of a command's reply; False if it could not go."""
        return (await send_piece(bot, chat_id, piece, edit_message_id)).done

    # -- commands --------------------------------------------------------------
    @staticmethod
    def _argument(message: Message) -> str:
        parts = (message.text or "").split(maxsplit=1)
        return parts[1].strip() if len(parts) > 1 else ""

    async def _cmd_start(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await _message(update).reply_text(HELP)

    async def _cmd_ask(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        text = self._argument(_message(update))
        first, _, rest = text.partition(" ")
        catalog = await asyncio.to_thread(self.chat.preferences.catalog)
        known = {n.lower() for offer in catalog.offers for n in offer.entry.names()}
        model, prompt = (first, rest) if first.lower() in known and rest.strip() else (None, text)
        await self._ask(_message(update), _user_id(update), prompt, [model])

    async def _cmd_compare(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        words = self._argument(_message(update)).split(maxsplit=2)
        if len(words) < 3:
            await _message(update).reply_text("Usage: /compare model_a model_b your prompt")
            return
        await self._ask(_message(update), _user_id(update), words[2], [words[0], words[1]])

    async def _cmd_model(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        user_id = _user_id(update)
        wanted = self._argument(_message(update))
        if wanted:
            await self._reply(_message(update), lambda: self.chat.preferences.set_model(user_id, wanted))
            return
        current = await asyncio.to_thread(self.chat.preferences.default_model, user_id)
        catalog = await asyncio.to_thread(self.chat.preferences.catalog)
        buttons = [
            [
                InlineKeyboardButton(
                    f"{'✅ ' if e.name == current else ''}{e.name} ({e.size_label()})", callback_data=f"model:{e.name}"
                )
            ]
            for e in catalog.available()
        ]
        await _message(update).reply_text(
            f"Your default model is {current}. Choose another:", reply_markup=InlineKeyboardMarkup(buttons)
        )

    async def _cmd_models(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await self._reply(_message(update), self.chat.reports.models_text)

    async def _cmd_units(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        user_id = _user_id(update)
        wanted = self._argument(_message(update))
        if not wanted:
            current = await asyncio.to_thread(self.chat.preferences.units, user_id)
            await _message(update).reply_text(f"Units: {current}. Change with /units joules or /units watts.")
            return
        await self._reply(_message(update), lambda: self.chat.preferences.set_units(user_id, wanted))

    async def _cmd_history(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Your prompts are yours: in a group, the history goes to your private chat with the bot, never the group."""
        user_id = _user_id(update)
        message = _message(update)
        if message.chat.type == ChatType.PRIVATE:
            await self._reply(message, lambda: self.chat.reports.history_text(user_id))
            return
        text = await asyncio.to_thread(self.chat.reports.history_text, user_id)
        try:
            for piece in split_html(html.escape(text, quote=False)):
                await context.bot.send_message(user_id, piece, parse_mode=ParseMode.HTML)
        except (Forbidden, BadRequest) as exc:  # the user never opened a private chat with the bot
            log.info("history for %s not sent privately: %s", user_id, exc)
            await message.reply_text(
                "Your history contains your prompts, so I only show it in a private chat, never in a group. "
                f"Open a chat with @{context.bot.username}, press Start, then send /history there."
            )
            return
        await message.reply_text("Your history contains your prompts, so I sent it to you in a private chat.")

    async def _cmd_stats(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        user_id = _user_id(update)
        await self._reply(_message(update), lambda: self.chat.reports.stats_text(user_id))

    async def _cmd_boxes(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await self._reply(_message(update), self.chat.reports.boxes_text)

    async def _cmd_box(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        user_id, wanted = _user_id(update), self._argument(_message(update))
        await self._reply(_message(update), lambda: self.chat.preferences.box_text(user_id, wanted))

    async def _cmd_forget(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        buttons = [
            [
                InlineKeyboardButton("Yes, delete", callback_data="forget:yes"),
                InlineKeyboardButton("Cancel", callback_data="forget:no"),
            ]
        ]
        await _message(update).reply_text(
            "Delete all your prompts and answers? (Anonymous energy figures stay in the statistics.)",
            reply_markup=InlineKeyboardMarkup(buttons),
        )

    async def _cmd_new(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = _message(update)
        user_id = _user_id(update)
        await self._reply(message, lambda: self.chat.conversations.new_conversation(user_id, str(message.chat_id)))

    async def _cmd_system(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Anyone sees the prompt; in a group only its administrators (Telegram's, asked now) change it."""
        message = _message(update)
        user_id, chat_id = _user_id(update), str(message.chat_id)
        group = message.chat.type != ChatType.PRIVATE
        argument = self._argument(message)
        may_change = True
        if group and argument:
            try:
                member = await context.bot.get_chat_member(chat_id, int(user_id))
            except TelegramError as exc:
                log.info("could not ask chat %s whether %s administers it: %s", chat_id, user_id, exc)
                await message.reply_text("I could not check that you administer this group; please try again later.")
                return
            may_change = member.status in GROUP_ADMINS
        await self._reply(
            message,
            lambda: self.chat.preferences.system_command(user_id, chat_id, argument, group, may_change=may_change),
        )

    async def _cmd_cancel(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = _message(update)
        user_id = _user_id(update)
        await self._reply(message, lambda: self.chat.cancelling.cancel(user_id, str(message.chat_id)))

    async def _reply(self, message: Message, produce: Callable[[], str]) -> None:
        """Send what `produce` (blocking: history, catalog) returns, or its refusal."""
        text = await text_of(produce)
        for piece in split_html(html.escape(text, quote=False)):
            await self._send(message.get_bot(), str(message.chat_id), piece, None)

    async def _on_button(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = _query(update)
        user_id = _user_id(update)
        action, _, value = (query.data or "").partition(":")
        if action in ("cancel", "retry"):  # answered with what happened (a few Redis/SQL reads first)
            await self._on_answer_button(query, user_id, action, value)
            return
        await query.answer()  # first: the user's client shows a spinner until the query is answered
        if action == "model":
            text = await text_of(lambda: self.chat.preferences.set_model(user_id, value))
        elif action == "forget" and value == "yes":
            text = await text_of(lambda: self.chat.preferences.forget(user_id))
        elif action == "forget":
            text = "Nothing was deleted."
        else:
            text = "That button has expired."
        await query.edit_message_text(text)

    async def _on_answer_button(self, query, user_id: str, action: str, value: str) -> None:
        """Cancel (under a waiting question) and Retry (under an answer); the follow task edits the status."""
        message = query.message
        chat_id = str(message.chat.id)
        if action == "cancel":
            text = await asyncio.to_thread(self.chat.cancelling.cancel, user_id, chat_id, value)
            await query.answer(text[:200])
            return
        group = message.chat.type != ChatType.PRIVATE
        try:
            prompt, model, context, attached = await asyncio.to_thread(
                self.chat.conversations.retry_context, user_id, chat_id, int(value) if value.isdigit() else -1, group
            )
        except InputError as exc:
            await query.answer(str(exc)[:200])  # Telegram shows at most 200 characters
            return
        await query.answer("Asking again…")
        await self._ask(message, user_id, prompt, [model], context, attached)

    async def _on_text(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """A message to the bot: its text, or a photo or file with its caption (none: a default question);
        a message of an album is answered with the album's others, as one question (`telegram_questions.Albums`)."""
        message = _message(update)
        if message.media_group_id is not None:
            self.albums.add(message)
            return
        await self._on_messages([message])

    async def _on_messages(self, messages: list[Message]) -> None:
        """One message, or an album's messages together: one question with all their attachments."""
        message, bot = messages[0], messages[0].get_bot()
        prompt = "\n\n".join(text for m in messages if (text := m.text or m.caption))
        user_id, chat_id = str(message.from_user.id if message.from_user else ""), str(message.chat_id)
        group = message.chat.type != ChatType.PRIVATE
        original = next((m.reply_to_message for m in messages if m.reply_to_message is not None), None)
        replied = original is not None and original.from_user is not None and original.from_user.id == bot.id
        if group:
            me = f"@{bot.username or ''}"
            if not (replied or any(mentions(m, me) for m in messages)):
                return
            prompt = prompt.replace(me, "").strip()
        reply_to = str(original.message_id) if replied and original is not None else None
        try:
            conversation = await asyncio.to_thread(
                self.chat.conversations.context_for, user_id, chat_id, reply_to, group
            )
        except (redis.ConnectionError, redis.TimeoutError):
            conversation = None  # prepare() says that the queue is unavailable
        await self._ask(message, user_id, prompt, [None], conversation, parts=messages)
