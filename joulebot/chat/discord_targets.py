"""Where a Discord answer goes, and the status shown until it comes.

A status message is edited in place (the queue position, then the answer as it grows),
at most every STATUS_EDIT_INTERVAL_S per route (Discord allows about 5 edits per 5 s per
channel; an interaction's replies are a route of their own), within the bot's budget
(`pacing.py`: finals first), and never with the text it shows; while the question waits it
carries the Cancel button.
The answer replaces it (its first message carries Retry) and longer answers continue in
further messages. The status is an interaction's reply (/ask: edited through the
interaction's webhook while its token lives, 15 minutes) or a bot message in a channel (a
mention, a reply, a thread). When it cannot be edited, the answer is posted anew.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import discord

from joulebot.chat.discord_format import Message, render, render_partial
from joulebot.chat.discord_views import cancel_button
from joulebot.chat.pacing import Pacing
from joulebot.chat.reply import Reply

log = logging.getLogger(__name__)

TOKEN_LIFETIME = timedelta(minutes=15)
TOKEN_MARGIN = timedelta(seconds=30)
STATUS_EDIT_INTERVAL_S = 1.5
NO_MENTIONS = discord.AllowedMentions.none()  # model output must never ping @everyone


def to_embeds(message: Message) -> list[discord.Embed]:
    embeds = []
    for e in message.embeds:
        embed = discord.Embed(title=e.title or None, description=e.description, colour=discord.Colour.green())
        if e.footer:
            embed.set_footer(text=e.footer)
        embeds.append(embed)
    return embeds


def render_reply(reply: Reply) -> list[Message]:
    return render([(a.title, a.text, a.footer) for a in reply.answers], reply.closing)


def token_alive(created_at: datetime) -> bool:
    return datetime.now(UTC) - created_at < TOKEN_LIFETIME - TOKEN_MARGIN


class ReplyTarget:
    """Shows the status (where it can) and delivers the answer; `buttons` go under its first message.

    `deliver` returns the ids of the messages it posted anew (a long answer's later pieces, or the
    whole answer where the status message could not be edited): a reply to any of them continues
    the conversation."""

    async def status(self, text: str, partial: str | None = None, *, urgent: bool = False) -> bool:
        return True

    async def deliver(self, messages: list[Message], buttons: discord.ui.View | None = None) -> list[str]:
        raise NotImplementedError


def sent_id(message: object) -> list[str]:
    """The id of a message discord.py returned (none where it returned nothing)."""
    found = getattr(message, "id", None)
    return [str(found)] if found is not None else []


class EditedTarget(ReplyTarget):
    """A status message edited in place, then replaced by the answer's first message."""

    def __init__(self, fallback: ReplyTarget, pacing: Pacing, route: str, shown: str = "") -> None:
        self.fallback, self.pacing, self.route = fallback, pacing, route
        self.shown = shown

    def alive(self) -> bool:
        return True

    async def _edit(self, **fields: Any) -> None:
        raise NotImplementedError

    async def _send(self, message: Message) -> list[str]:
        raise NotImplementedError

    async def status(self, text: str, partial: str | None = None, *, urgent: bool = False) -> bool:
        """The status line, or the answer so far while it is generated (one embed, Markdown closed).
        False: not this route's turn or over the bot's budget (offer it again); an `urgent` one waits."""
        shown = partial or text
        if shown == self.shown or not self.alive():
            return True
        if not await self.pacing.turn(self.route, STATUS_EDIT_INTERVAL_S, urgent):
            return False
        if not await self.pacing.budget(urgent):
            return False
        waiting = text.startswith("⏳") and not partial  # no Cancel once it runs
        view = cancel_button() if waiting else None
        try:
            if partial:
                await self._edit(content=None, embeds=to_embeds(render_partial(partial, text)), view=view)
            else:
                await self._edit(content=text, view=view)
            self.shown = shown
        except discord.HTTPException as exc:
            log.info("status edit skipped: %s", exc)
        finally:
            self.pacing.called(self.route)
        return True

    async def deliver(self, messages: list[Message], buttons: discord.ui.View | None = None) -> list[str]:
        if not self.alive():
            return await self.fallback.deliver(messages)
        first, *rest = messages
        await self.pacing.budget(urgent=True)
        try:
            await self._edit(
                content=first.content or None, embeds=to_embeds(first), view=buttons, allowed_mentions=NO_MENTIONS
            )
        except (discord.NotFound, discord.Forbidden) as exc:  # token gone or status message deleted
            log.info("could not replace the status message (%s); posting the answer anew", exc)
            return await self.fallback.deliver(messages)
        refs = []
        for message in rest:
            await self.pacing.budget(urgent=True)
            refs += await self._send(message)
        return refs


class InteractionTarget(EditedTarget):
    """A slash command's deferred reply, while the interaction token lives."""

    def __init__(
        self, interaction: discord.Interaction, fallback: ReplyTarget, pacing: Pacing, shown: str = ""
    ) -> None:
        super().__init__(fallback, pacing, f"interaction:{id(interaction)}", shown)  # its replies: one route
        self.interaction = interaction

    def alive(self) -> bool:
        return token_alive(self.interaction.created_at)

    async def _edit(self, **fields: Any) -> None:
        await self.interaction.edit_original_response(**fields)

    async def _send(self, message: Message) -> list[str]:
        sent = await self.interaction.followup.send(
            content=message.content or discord.utils.MISSING,
            embeds=to_embeds(message),
            allowed_mentions=NO_MENTIONS,
            wait=True,
        )
        return sent_id(sent)


class MessageTarget(EditedTarget):
    """A status message the bot posted in a channel (a DM, a thread, a reply to a mention)."""

    def __init__(
        self,
        client: discord.Client,
        channel_id: str,
        message_id: str,
        fallback: ReplyTarget,
        pacing: Pacing,
        shown: str = "",
    ) -> None:
        super().__init__(fallback, pacing, f"channel:{channel_id}", shown)
        self.channel = client.get_partial_messageable(int(channel_id))
        self.message = self.channel.get_partial_message(int(message_id))

    async def _edit(self, **fields: Any) -> None:
        await self.message.edit(**fields)

    async def _send(self, message: Message) -> list[str]:
        sent = await self.channel.send(
            content=message.content or None, embeds=to_embeds(message), allowed_mentions=NO_MENTIONS
        )
        return sent_id(sent)


class ChannelTarget(ReplyTarget):
    """A new message in the channel, mentioning the asker (the status message is gone or cannot be edited)."""

    def __init__(self, client: discord.Client, channel_id: str, user_id: str, pacing: Pacing) -> None:
        self.client, self.channel_id, self.user_id, self.pacing = client, channel_id, user_id, pacing

    async def deliver(self, messages: list[Message], buttons: discord.ui.View | None = None) -> list[str]:
        channel = self.client.get_channel(int(self.channel_id)) or await self.client.fetch_channel(int(self.channel_id))
        mention = discord.AllowedMentions(everyone=False, roles=False, users=[discord.Object(int(self.user_id))])
        refs = []
        for index, message in enumerate(messages):
            prefix = f"<@{self.user_id}> here is your answer.\n" if index == 0 else ""
            await self.pacing.budget(urgent=True)
            sent = await channel.send(  # type: ignore[union-attr]
                content=(prefix + message.content) or None,
                embeds=to_embeds(message),
                allowed_mentions=mention if index == 0 else NO_MENTIONS,
            )
            refs += sent_id(sent)
        return refs


class WebhookTarget(EditedTarget):
    """A resumed slash-command delivery (the bot restarted while it was owed): the command's reply
    (`original_id`, the status message) edited through the interaction's webhook while its token
    lives, as if the bot had never stopped; the rest as follow-ups."""

    def __init__(
        self,
        client: discord.Client,
        application_id: int,
        token: str,
        created_at: datetime,
        original_id: str,
        fallback: ReplyTarget,
        pacing: Pacing,
    ) -> None:
        super().__init__(fallback, pacing, f"webhook:{original_id}")
        self.client, self.application_id, self.token = client, application_id, token
        self.created_at, self.original_id = created_at, original_id

    @property
    def webhook(self) -> discord.Webhook:
        """Made when used: discord.py needs the client's HTTP session, open once it has logged in."""
        return discord.Webhook.partial(self.application_id, self.token, client=self.client)

    def alive(self) -> bool:
        return token_alive(self.created_at)

    async def _edit(self, **fields: Any) -> None:
        await self.webhook.edit_message(int(self.original_id), **fields)

    async def _send(self, message: Message) -> list[str]:
        sent = await self.webhook.send(
            content=message.content or discord.utils.MISSING,
            embeds=to_embeds(message),
            allowed_mentions=NO_MENTIONS,
            wait=True,
        )
        return sent_id(sent)
