"""Which Telegram messages make one question: an album's messages together, and a group's only where
they mention the bot (or reply to it).

Albums: photos (or documents) a user sends together arrive as messages of their own that share a
`media_group_id` (Bot API, Message), the caption on one of them, usually the first.

A person who sends an album asks about the pictures together ("which of these is ripe?"), so joulebot
answers an album as one question with all its images, once: the messages are gathered until none more
of the album has come for ALBUM_WAIT_S, then handed on together, oldest first. The album is gathered in
the bot process that receives it (Telegram gives one bot's updates to one getUpdates poller or webhook).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from telegram import Message
from telegram.constants import MessageEntityType

# Telegram sends an album's messages together (one getUpdates answer, or webhook calls a moment apart)
ALBUM_WAIT_S = 1.0


def mentions(message: Message, me: str) -> bool:
    """Whether the message's text or caption mentions `me` ("@joulebot")."""
    parse = message.parse_entities if message.text else message.parse_caption_entities
    return any(m.lower() == me.lower() for m in parse([MessageEntityType.MENTION]).values())


class Albums:
    """The albums being gathered, by chat and media group."""

    def __init__(
        self,
        answer: Callable[[list[Message]], Awaitable[None]],
        spawn: Callable[[Coroutine[Any, Any, None]], None],
        wait_s: float = ALBUM_WAIT_S,
    ) -> None:
        self.answer, self.spawn, self.wait_s = answer, spawn, wait_s
        self._gathering: dict[tuple[int, str], list[Message]] = {}
        self._last_at: dict[tuple[int, str], float] = {}

    def add(self, message: Message) -> None:
        """One message of an album; the album is answered once its last message is in."""
        key = (message.chat_id, message.media_group_id or "")
        self._last_at[key] = asyncio.get_running_loop().time()
        if key in self._gathering:
            self._gathering[key].append(message)
            return
        self._gathering[key] = [message]
        self.spawn(self._gather(key))

    async def _gather(self, key: tuple[int, str]) -> None:
        loop = asyncio.get_running_loop()
        while (left := self._last_at[key] + self.wait_s - loop.time()) > 0:
            await asyncio.sleep(left)
        messages = self._gathering.pop(key)
        del self._last_at[key]
        await self.answer(sorted(messages, key=lambda m: m.message_id))
