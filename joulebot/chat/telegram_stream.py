"""The Telegram messages that show one answer: the status message, then, as a long answer
streams in, the messages it continues in; at the end each shows its piece of the reply.

Telegram allows about one message a second per chat (edits count), about 30 a second per bot,
and 4096 characters a message. While the answer is generated, each progress report makes at
most one Bot API call, and only when the chat's last call is `STATUS_EDIT_INTERVAL_S` ago and
the bot's budget has a free slot (`pacing.py`); else it is skipped (and offered again). The
calls of the finished reply wait their turn instead (`FINAL_INTERVAL_S` after the chat's last
call), ahead of every status in the bot's budget. Every message but the
last is cut where the finished reply will be cut (`partial_pieces`), so once full it is
left alone; when the answer outgrows the last message, that one is finished first (its
piece, no status line), then the next is sent as a reply to it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from telegram import InlineKeyboardMarkup, Message, ReplyParameters
from telegram.constants import ParseMode
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TelegramError

from joulebot.chat.pacing import Pacing
from joulebot.chat.sending import SEND_ATTEMPTS, backoff_s
from joulebot.chat.telegram_format import partial_pieces, visible_text

log = logging.getLogger(__name__)

STATUS_EDIT_INTERVAL_S = 1.5  # per chat, between status edits: Telegram allows about one message a second
FINAL_INTERVAL_S = 1.0  # per chat, before a call of the finished reply
GENERATING = "✍️ generating…"


def _seconds(retry_after) -> float:
    return retry_after.total_seconds() if hasattr(retry_after, "total_seconds") else float(retry_after)


@dataclass
class Sent:
    done: bool  # False: it could not go now (the answer stays owed for the next start)
    message_id: str | None = None  # the message that shows it; None if it was dropped (the chat blocked the bot)


async def send_piece(
    bot,
    chat_id: str,
    piece: str,
    edit_message_id: str | None = None,
    buttons: InlineKeyboardMarkup | None = None,
    reply_to: str | None = None,
) -> Sent:
    """One HTML piece (an edit, or a new message replying to `reply_to`), through flood control (waited
    out as Telegram says), parse errors and network trouble (retried with backoff, see `sending`)."""
    parse_mode: str | None = ParseMode.HTML
    text = piece
    for attempt in range(SEND_ATTEMPTS):
        try:
            if edit_message_id is not None:
                message = await bot.edit_message_text(
                    text, chat_id=chat_id, message_id=int(edit_message_id), parse_mode=parse_mode, reply_markup=buttons
                )
            else:
                replying = (
                    ReplyParameters(message_id=int(reply_to), allow_sending_without_reply=True) if reply_to else None
                )
                message = await bot.send_message(
                    chat_id, text, parse_mode=parse_mode, reply_markup=buttons, reply_parameters=replying
                )
            return Sent(True, str(message.message_id) if isinstance(message, Message) else edit_message_id)
        except RetryAfter as exc:
            await asyncio.sleep(_seconds(exc.retry_after))
        except BadRequest as exc:
            reason = str(exc).lower()
            if "parse entities" in reason or "unsupported start tag" in reason:
                parse_mode, text = None, visible_text(piece)  # resend as plain text
            elif "not modified" in reason:
                return Sent(True, edit_message_id)
            elif edit_message_id is not None or parse_mode is not None:
                log.warning("chat %s refused a reply piece (%s); sending it as a new plain message", chat_id, exc)
                edit_message_id, parse_mode, text = None, None, visible_text(piece)
            else:
                log.error("chat %s refused a plain reply piece (%s); dropped", chat_id, exc)
                return Sent(True)
        except Forbidden:
            log.info("chat %s blocked the bot; answer dropped", chat_id)
            return Sent(True)
        except NetworkError as exc:  # after BadRequest, its subclass: timeouts, dropped connections, 5xx
            log.info("network trouble sending to chat %s (%s)", chat_id, exc)
            if attempt + 1 < SEND_ATTEMPTS:
                await asyncio.sleep(backoff_s(attempt))
    log.error("could not send to chat %s after %d attempts", chat_id, SEND_ATTEMPTS)
    return Sent(False)


class AnswerMessages:
    """The messages of one answer in one chat, and what each shows.

    `message_ids` are the status message and, for an answer resumed after a restart, the messages
    it had already continued in (their text unknown: each is edited once). `pacing` (the time of
    each chat's last call, the bot's budget) is shared by every answer of the bot; `on_new` is told
    the message ids each time the answer continues in a new message (to keep them with the delivery).
    """

    def __init__(
        self,
        bot,
        chat_id: str,
        message_ids: list[str],
        pacing: Pacing,
        shown_first: str = "",
        cancel: InlineKeyboardMarkup | None = None,
        on_new: Callable[[list[str]], Awaitable[None]] | None = None,
    ) -> None:
        self.bot, self.chat_id, self.pacing = bot, chat_id, pacing
        self.ids = list(message_ids)
        self.shown: list[str | None] = [shown_first, *[None] * (len(self.ids) - 1)][: len(self.ids)]
        self.cancel, self.on_new = cancel, on_new
        self.partial: str | None = None  # the answer so far, kept under later status lines
        self.blocked_until = 0.0  # flood control said to wait until then

    # -- while the answer is made ---------------------------------------------------------
    async def update(self, status: str, partial: str | None = None, *, urgent: bool = False) -> bool:
        """Show `status`, under the answer so far once there is one (a `ProgressHandler`).

        One Bot API call at most, and none before the chat's turn or beyond the bot's budget (then
        False: offer it again); an `urgent` status waits for its turn (and out flood control) and is
        shown whole."""
        if partial:
            self.partial = partial
        if self.partial:
            wanted = partial_pieces(self.partial, GENERATING if status.startswith("✍️") else status)
            parse_mode: str | None = ParseMode.HTML
        else:
            wanted, parse_mode = [status], None
        buttons = self.cancel if status.startswith("⏳") and not self.partial else None  # no Cancel once it runs
        for _ in range(SEND_ATTEMPTS if urgent else 1):
            step = self._first_difference(wanted)
            if step is None or not self.ids:
                return True
            if not await self._turn(urgent) or not await self.pacing.budget(urgent):
                return False
            try:
                if step < len(self.ids):
                    await self.bot.edit_message_text(
                        wanted[step],
                        chat_id=self.chat_id,
                        message_id=int(self.ids[step]),
                        parse_mode=parse_mode,
                        reply_markup=buttons if step == 0 else None,
                    )
                else:
                    replying = ReplyParameters(message_id=int(self.ids[-1]), allow_sending_without_reply=True)
                    sent = await self.bot.send_message(
                        self.chat_id, wanted[step], parse_mode=parse_mode, reply_parameters=replying
                    )
                    self.ids.append(str(sent.message_id))
                    self.shown.append(None)
                    if self.on_new is not None:
                        await self.on_new(list(self.ids))
                self.shown[step] = wanted[step]
            except RetryAfter as exc:  # flood control: no status for a while, the answer still comes
                self.blocked_until = time.monotonic() + _seconds(exc.retry_after)
            except BadRequest as exc:
                if "not modified" not in str(exc).lower():
                    log.info("status edit skipped: %s", exc)
                    return True
                self.shown[step] = wanted[step]  # it shows that already (a restarted bot did not know)
            except TelegramError as exc:
                log.info("status edit skipped: %s", exc)
                return True
            finally:
                self.pacing.called(self.chat_id)
        return self._first_difference(wanted) is None

    def _first_difference(self, wanted: list[str]) -> int | None:
        """The first message to change (an index past the last: a new one), None if all show what they should."""
        for index, text in enumerate(wanted):
            if index >= len(self.shown) or self.shown[index] != text:
                return index
        return None

    async def _turn(self, urgent: bool) -> bool:
        """Whether this chat may get a call now (and flood control lets it); an `urgent` caller waits instead."""
        interval = FINAL_INTERVAL_S if urgent else STATUS_EDIT_INTERVAL_S
        return await self.pacing.turn(self.chat_id, interval, urgent, self.blocked_until)

    # -- the finished reply ------------------------------------------------------------------
    async def finish(self, pieces: list[str], buttons: InlineKeyboardMarkup | None = None) -> bool:
        """Make the messages show exactly `pieces` (`buttons` under the last): edit those that differ,
        send the missing ones, delete those left over. False if a piece could not go (still owed)."""
        for index, piece in enumerate(pieces):
            markup = buttons if index == len(pieces) - 1 else None
            if index < len(self.ids) and self.shown[index] == piece and markup is None:
                continue  # a full piece streamed as it stays
            await self._turn(urgent=True)
            await self.pacing.budget(urgent=True)
            existing = index < len(self.ids)
            sent = await send_piece(
                self.bot,
                self.chat_id,
                piece,
                self.ids[index] if existing else None,
                markup,
                reply_to=self.ids[index - 1] if index and not existing else None,
            )
            self.pacing.called(self.chat_id)
            if not sent.done:
                return False
            if sent.message_id is None:  # dropped (the chat blocked the bot): nothing more to show there
                return True
            if existing:
                self.ids[index], self.shown[index] = sent.message_id, piece
            else:
                self.ids.append(sent.message_id)
                self.shown.append(piece)
                if self.on_new is not None:
                    await self.on_new(list(self.ids))
        await self._drop(self.ids[len(pieces) :])
        del self.ids[len(pieces) :], self.shown[len(pieces) :]
        return True

    async def _drop(self, message_ids: list[str]) -> None:
        """Delete messages the finished reply does not need (a shorter reply than the stream: an error)."""
        for message_id in message_ids:
            await self._turn(urgent=True)
            await self.pacing.budget(urgent=True)
            try:
                await self.bot.delete_message(self.chat_id, int(message_id))
            except TelegramError as exc:  # too old, or already deleted: say so, the reply itself is complete
                log.info("left-over message %s in chat %s not deleted: %s", message_id, self.chat_id, exc)
            self.pacing.called(self.chat_id)
