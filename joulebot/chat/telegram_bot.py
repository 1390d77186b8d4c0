"""The Telegram bot (python-telegram-bot 22): message it, get the answer and its energy bill.

Every update is handled concurrently; a question is queued, then followed by
a background task that edits one status message (at most every 2 s, never with
the same text) and finally replaces it with the answer. What is owed to whom is
kept in Redis, so a restarted bot still delivers every answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import logging
import time
from collections.abc import Awaitable, Callable
from urllib.parse import urlparse

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Message, Update
from telegram.constants import ChatType, MessageEntityType, ParseMode
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TelegramError
from telegram.ext import (
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from joulebot.chat.core import HELP, ChatCore, InputError, JobError, Reply, make_reply, spawn
from joulebot.chat.deliveries import Delivery
from joulebot.chat.telegram_format import split_html, to_html, visible_text
from joulebot.config import Settings

log = logging.getLogger(__name__)

STATUS_EDIT_INTERVAL_S = 2.0
SEND_ATTEMPTS = 6


def _seconds(retry_after) -> float:
    return retry_after.total_seconds() if hasattr(retry_after, "total_seconds") else float(retry_after)


class StatusMessage:
    """One status message, edited at most every 2 s and never with the text it already shows."""

    def __init__(self, bot, chat_id: str, message_id: str | None, text: str = "") -> None:
        self.bot, self.chat_id, self.message_id = bot, chat_id, message_id
        self.text = text
        self.edited_at = time.monotonic()
        self.blocked_until = 0.0

    async def update(self, text: str, *, urgent: bool = False) -> None:
        """Show `text`; an `urgent` one waits for the next allowed edit (and out flood control), never skipped."""
        for _ in range(SEND_ATTEMPTS if urgent else 1):
            now = time.monotonic()
            if self.message_id is None or text == self.text:
                return
            ready_at = max(self.edited_at + STATUS_EDIT_INTERVAL_S, self.blocked_until)
            if now < ready_at:
                if not urgent:
                    return
                await asyncio.sleep(ready_at - now)
                now = time.monotonic()
            try:
                await self.bot.edit_message_text(text, chat_id=self.chat_id, message_id=int(self.message_id))
                self.text, self.edited_at = text, now
                return
            except RetryAfter as exc:  # flood control: skip status edits for a while, the answer still comes
                self.blocked_until = now + _seconds(exc.retry_after)
            except TelegramError as exc:
                log.info("status edit skipped: %s", exc)
                return


class TelegramBot:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.core = ChatCore(settings, "telegram")
        self.admins = Settings.id_set(settings.telegram_admins)
        self.allowed = Settings.id_set(settings.telegram_allowed_users)
        self._tasks: set[asyncio.Task] = set()

    # -- the application ---------------------------------------------------
    def application(self) -> Application:
        token = self.settings.telegram_bot_token.get_secret_value()
        if not token:
            raise RuntimeError("TELEGRAM_BOT_TOKEN is not set")
        app = (
            ApplicationBuilder()
            .token(token)
            .base_url(self.settings.telegram_api_base_url)
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
        app.add_handler(CommandHandler("forget", self._guarded(self._cmd_forget)))
        app.add_handler(CallbackQueryHandler(self._guarded(self._on_button)))
        app.add_handler(MessageHandler(filters.TEXT & ~filters.COMMAND, self._guarded(self._on_text)))
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
                secret_token=self.settings.telegram_webhook_secret.get_secret_value() or None,
                allowed_updates=["message", "callback_query"],
            )
        else:
            app.run_polling(allowed_updates=["message", "callback_query"])

    async def _resume(self, app: Application) -> None:
        """Deliver what a previous run of the bot still owed."""
        try:
            await asyncio.to_thread(self.core.ensure_queue)
        except JobError as exc:
            log.warning("%s; pending answers are resumed at the next start", exc)
        pending = await asyncio.to_thread(self.core.pending_deliveries)
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
    async def _ask(self, message: Message, user_id: str, prompt: str, models: list[str | None]) -> None:
        chat_id = str(message.chat_id)
        try:
            requests = await asyncio.to_thread(self.core.prepare, user_id, chat_id, prompt, models)
        except InputError as exc:
            await message.reply_text(str(exc))
            return
        status = await message.reply_text("⏳ queued")
        try:
            delivery = await asyncio.to_thread(self.core.submit, requests, str(status.message_id))
        except JobError as exc:
            await status.edit_text(f"⚠️ {exc}")
            return
        self._background(self._follow(message.get_bot(), delivery, status.text))

    def _background(self, coroutine) -> None:
        spawn(self._tasks, coroutine, "following an answer")

    async def _follow(self, bot, delivery: Delivery, shown: str = "") -> None:
        status = StatusMessage(bot, delivery.chat_id, delivery.status_message_id, shown)
        try:
            results = await self.core.follow(delivery, status.update)
        except JobError as exc:
            reply = Reply([], f"⚠️ {exc}")
        else:
            reply = make_reply(results, delivery.units, self.settings.public_url)
        if await self._deliver(bot, delivery, reply):
            await asyncio.to_thread(self.core.delivered, delivery)
        # else: it stays owed in Redis, and the next start of the bot sends it again

    async def _deliver(self, bot, delivery: Delivery, reply: Reply) -> bool:
        """Replace the status message with the reply's first piece, send the rest; never lose it."""
        markup = "\n\n".join(
            to_html(text) if is_model else html.escape(text, quote=False) for text, is_model in reply.parts()
        )
        for index, piece in enumerate(split_html(markup)):
            edit = delivery.status_message_id if index == 0 else None
            if not await self._send(bot, delivery.chat_id, piece, edit):
                return False
        return True

    async def _send(self, bot, chat_id: str, piece: str, edit_message_id: str | None) -> bool:
        """One piece, through flood control, parse errors and network trouble; False if it could not go."""
        parse_mode: str | None = ParseMode.HTML
        text = piece
        for _ in range(SEND_ATTEMPTS):
            try:
                if edit_message_id is not None:
                    await bot.edit_message_text(
                        text, chat_id=chat_id, message_id=int(edit_message_id), parse_mode=parse_mode
                    )
                else:
                    await bot.send_message(chat_id, text, parse_mode=parse_mode)
                return True
            except RetryAfter as exc:
                await asyncio.sleep(_seconds(exc.retry_after))
            except BadRequest as exc:
                reason = str(exc).lower()
                if "parse entities" in reason or "unsupported start tag" in reason:
                    parse_mode, text = None, visible_text(piece)  # resend as plain text
                elif "not modified" in reason:
                    return True
                elif edit_message_id is not None or parse_mode is not None:
                    log.warning("chat %s refused a reply piece (%s); sending it as a new plain message", chat_id, exc)
                    edit_message_id, parse_mode, text = None, None, visible_text(piece)
                else:
                    log.error("chat %s refused a plain reply piece (%s); dropped", chat_id, exc)
                    return True
            except Forbidden:
                log.info("chat %s blocked the bot; answer dropped", chat_id)
                return True
            except NetworkError as exc:  # after BadRequest, its subclass: timeouts, dropped connections
                log.info("network trouble sending to chat %s (%s); retrying", chat_id, exc)
                await asyncio.sleep(1.0)
        log.error("could not deliver to chat %s after %d attempts; kept for the next start", chat_id, SEND_ATTEMPTS)
        return False

    # -- commands --------------------------------------------------------------
    @staticmethod
    def _argument(message: Message) -> str:
        parts = (message.text or "").split(maxsplit=1)
        return parts[1].strip() if len(parts) > 1 else ""

    async def _cmd_start(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await update.effective_message.reply_text(HELP)

    async def _cmd_ask(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        text = self._argument(update.effective_message)
        first, _, rest = text.partition(" ")
        catalog = await asyncio.to_thread(self.core.catalog)
        known = {n.lower() for offer in catalog.offers for n in offer.entry.names()}
        model, prompt = (first, rest) if first.lower() in known and rest.strip() else (None, text)
        await self._ask(update.effective_message, str(update.effective_user.id), prompt, [model])

    async def _cmd_compare(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        words = self._argument(update.effective_message).split(maxsplit=2)
        if len(words) < 3:
            await update.effective_message.reply_text("Usage: /compare model_a model_b your prompt")
            return
        await self._ask(update.effective_message, str(update.effective_user.id), words[2], [words[0], words[1]])

    async def _cmd_model(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        user_id = str(update.effective_user.id)
        wanted = self._argument(update.effective_message)
        if wanted:
            await self._reply(update.effective_message, lambda: self.core.set_model(user_id, wanted))
            return
        current = await asyncio.to_thread(self.core.default_model, user_id)
        catalog = await asyncio.to_thread(self.core.catalog)
        buttons = [
            [InlineKeyboardButton(f"{'✅ ' if e.name == current else ''}{e.name} ({e.size_label()})",
                                  callback_data=f"model:{e.name}")]
            for e in catalog.available()
        ]  # fmt: skip
        await update.effective_message.reply_text(
            f"Your default model is {current}. Choose another:", reply_markup=InlineKeyboardMarkup(buttons)
        )

    async def _cmd_models(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await self._reply(update.effective_message, self.core.models_text)

    async def _cmd_units(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        user_id = str(update.effective_user.id)
        wanted = self._argument(update.effective_message)
        if not wanted:
            current = await asyncio.to_thread(self.core.units, user_id)
            await update.effective_message.reply_text(f"Units: {current}. Change with /units joules or /units watts.")
            return
        await self._reply(update.effective_message, lambda: self.core.set_units(user_id, wanted))

    async def _cmd_history(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Your prompts are yours: in a group, the history goes to your private chat with the bot, never the group."""
        user_id = str(update.effective_user.id)
        message = update.effective_message
        if message.chat.type == ChatType.PRIVATE:
            await self._reply(message, lambda: self.core.history_text(user_id))
            return
        text = await asyncio.to_thread(self.core.history_text, user_id)
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
        await self._reply(update.effective_message, self.core.stats_text)

    async def _cmd_forget(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        buttons = [[InlineKeyboardButton("Yes, delete", callback_data="forget:yes"),
                    InlineKeyboardButton("Cancel", callback_data="forget:no")]]  # fmt: skip
        await update.effective_message.reply_text(
            "Delete all your prompts and answers? (Anonymous energy figures stay in the statistics.)",
            reply_markup=InlineKeyboardMarkup(buttons),
        )

    async def _reply(self, message: Message, produce: Callable[[], str]) -> None:
        """Send what `produce` (blocking: history, catalog) returns, or its refusal."""
        text = await self.core.text_of(produce)
        for piece in split_html(html.escape(text, quote=False)):
            await self._send(message.get_bot(), str(message.chat_id), piece, None)

    async def _on_button(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        await query.answer()  # first: the user's client shows a spinner until the query is answered
        user_id = str(update.effective_user.id)
        action, _, value = (query.data or "").partition(":")
        if action == "model":
            text = await self.core.text_of(lambda: self.core.set_model(user_id, value))
        elif action == "forget" and value == "yes":
            text = await self.core.text_of(lambda: self.core.forget(user_id))
        elif action == "forget":
            text = "Nothing was deleted."
        else:
            text = "That button has expired."
        await query.edit_message_text(text)

    async def _on_text(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        prompt = message.text or ""
        if message.chat.type != ChatType.PRIVATE:
            me = context.bot.username or ""
            mentions = message.parse_entities([MessageEntityType.MENTION]).values()
            mentioned = any(m.lower() == f"@{me}".lower() for m in mentions)
            replied = (
                message.reply_to_message is not None
                and message.reply_to_message.from_user is not None
                and (message.reply_to_message.from_user.id == context.bot.id)
            )
            if not (mentioned or replied):
                return
            prompt = prompt.replace(f"@{me}", "").strip()
        await self._ask(message, str(update.effective_user.id), prompt, [None])
