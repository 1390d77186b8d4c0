"""The Discord bot (discord.py 2.7): slash commands, mentions, replies and threads, with the energy bill.

Where a conversation lives (llmcord's model):
- `/ask` (and `/compare`) start a new one; a mention of the bot in a channel starts one too,
  in a thread the bot opens on that message (`DISCORD_THREADS`; else, or where it cannot,
  as a reply);
- a reply to one of the bot's answers continues from that answer (a branch);
- in a thread the bot opened, every message continues the thread's conversation;
- in a DM, every message continues the current one (until /new or CONVERSATION_IDLE_S).
Without the privileged MESSAGE_CONTENT intent, Discord gives the bot the text of DMs and of
messages that mention it (a reply with its @ mention on does) only; `DISCORD_MESSAGE_CONTENT`
asks for the intent, and then every message of a bot thread and every reply is read.

Each question gets a status message (the deferred reply of a command, or a message of the
bot) with a Cancel button while it waits; it shows the answer as it grows, then the answer
with a Retry button. What is owed is kept in Redis, so a restarted bot still delivers it.
Questions are taken in (checked, queued, their status posted) INTAKE_AT_ONCE at a time, as the
Telegram bot takes them in; the others wait their turn, and answers are followed apart.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable

import discord
import redis

from joulebot.attachments.parts import Attached, AttachmentError, default_question
from joulebot.chat.asking import InputError
from joulebot.chat.background import spawn, text_of
from joulebot.chat.cancelling import CANCELLED
from joulebot.chat.context import Context
from joulebot.chat.discord_access import AllowList, GuardedTree, scope_of
from joulebot.chat.discord_commands import SlashCommands
from joulebot.chat.discord_files import attachments_of
from joulebot.chat.discord_sending import TRANSIENT, queued_status, retried
from joulebot.chat.discord_targets import (
    NO_MENTIONS,
    ChannelTarget,
    InteractionTarget,
    MessageTarget,
    ReplyTarget,
    WebhookTarget,
    render_reply,
    token_alive,
)
from joulebot.chat.discord_views import CancelView, RetryView, cancel_button, retry_button
from joulebot.chat.pacing import DISCORD_PER_S, INTAKE_AT_ONCE, Pacer, Pacing
from joulebot.chat.reply import Reply, make_reply
from joulebot.chat.service import ChatService
from joulebot.chat.taking_in import TakingIn
from joulebot.config import Settings
from joulebot.queueing.client import JobCancelled, JobError, QueueUnavailable
from joulebot.queueing.deliveries import Delivery

log = logging.getLogger(__name__)

QUEUED = "⏳ queued"
UNREADABLE = (
    "I cannot read replies that do not mention me here: keep the reply's @ mention on "
    "(or use /ask). The server's admin can give me the Message Content intent instead."
)
THREAD_NAME = 100  # Discord's limit on a thread's name


def bots_thread(channel: object, me: discord.abc.Snowflake) -> bool:
    """A thread this bot opened (discord.py caches threads from the gateway, owner included)."""
    return isinstance(channel, discord.Thread) and channel.owner_id == me.id


def thread_name(prompt: str) -> str:
    line = " ".join(prompt.split())
    return line if len(line) <= THREAD_NAME else line[: THREAD_NAME - 1] + "…"


class DiscordBot(discord.Client):
    def __init__(self, settings: Settings) -> None:
        intents = discord.Intents.default()  # guilds, guild and DM messages: not privileged
        intents.message_content = settings.discord_message_content  # privileged: enable it in the portal first
        super().__init__(intents=intents)
        self.settings = settings
        self.chat = ChatService(settings, "discord")
        self.allow = AllowList(settings)
        self.tree = GuardedTree(self, self.allow)
        self.commands = SlashCommands(self)
        self.pacing = Pacing(Pacer(DISCORD_PER_S))  # each route's last call, the bot's budget: finals first
        self._resumed = False
        self._tasks: set[asyncio.Task] = set()
        self._intake = asyncio.Semaphore(INTAKE_AT_ONCE)  # questions taken in at once; the rest wait their turn
        self._taking_in = TakingIn()  # one question of a user at a time: the pending limit holds

    # -- start-up ----------------------------------------------------------
    async def setup_hook(self) -> None:
        self.add_view(CancelView(self))  # persistent: buttons under older messages work after a restart
        self.add_view(RetryView(self))
        try:
            await asyncio.to_thread(self.chat.asking.ensure_queue)
            await self.commands.sync(force=self.settings.discord_sync_on_start)
        except QueueUnavailable as exc:  # the bot still starts: questions get "queue unavailable" until it is back
            log.warning("%s; slash commands not checked (run with --sync once it is back if they changed)", exc)

    async def on_ready(self) -> None:
        if self._resumed:
            return
        self._resumed = True
        for delivery in await asyncio.to_thread(self.chat.following.pending):
            spawn(self._tasks, self.follow(delivery, self.resumed_target(delivery)), "resuming an answer")

    def resumed_target(self, delivery: Delivery) -> ReplyTarget:
        """After a restart: a command's answer through the interaction's webhook while its token lives;
        a message's by editing its status message; else a new message in the channel."""
        channel = ChannelTarget(self, delivery.chat_id, delivery.user_id, self.pacing)
        if delivery.reply_to:
            if token_alive(delivery.created_at) and delivery.status_message_id:
                app_id, token = delivery.reply_to.split(":", 1)
                return WebhookTarget(
                    self, int(app_id), token, delivery.created_at, delivery.status_message_id, channel, self.pacing
                )
            return channel
        if delivery.status_message_id:
            return MessageTarget(self, delivery.chat_id, delivery.status_message_id, channel, self.pacing)
        return channel

    # -- the path of one question ------------------------------------------
    async def ask(
        self,
        interaction: discord.Interaction,
        prompt: str,
        models: list[str | None],
        image: discord.Attachment | None = None,
    ) -> None:
        """/ask and /compare: a new conversation, answered in the command's deferred reply."""
        await retried(lambda: interaction.response.defer(thinking=True), TRANSIENT, "deferring a command")
        user_id, channel_id = str(interaction.user.id), str(interaction.channel_id)
        group = interaction.guild_id is not None
        scope = scope_of(interaction.channel, interaction.channel_id)
        # its turn to be taken in (meanwhile Discord shows "thinking…"), after the user's previous question
        async with self._taking_in(user_id), self._intake:
            try:
                attached = await attachments_of([image], self.settings) if image is not None else None
                requests = await asyncio.to_thread(
                    self.chat.asking.prepare, user_id, channel_id, prompt, models, None, group, scope, attached
                )
                show = functools.partial(interaction.edit_original_response, content=QUEUED, view=cancel_button())
                status = await queued_status(show)
                delivery = await asyncio.to_thread(
                    self.chat.asking.submit,
                    requests,
                    str(status.id) if status else None,  # none: the answer replaces the "thinking…" reply
                    f"{interaction.application_id}:{interaction.token}",
                )
            except (InputError, JobError, AttachmentError) as exc:
                await interaction.delete_original_response()
                await interaction.followup.send(str(exc), ephemeral=True)
                return
        fallback = ChannelTarget(self, channel_id, user_id, self.pacing)
        await self.follow(delivery, InteractionTarget(interaction, fallback, self.pacing, QUEUED if status else ""))

    async def on_message(self, message: discord.Message) -> None:
        """Mentions, replies to the bot's answers, messages in its threads and DMs are questions."""
        me = self.user
        if (
            me is None
            or message.author.bot
            or message.type not in (discord.MessageType.default, discord.MessageType.reply)
        ):
            return
        chat_id, user_id = str(message.channel.id), str(message.author.id)
        dm = message.guild is None and getattr(message.channel, "guild_id", None) is None
        mentioned = any(user.id == me.id for user in message.mentions)
        reply_to = self.replied_answer(message)
        thread = bots_thread(message.channel, me)
        if not (dm or mentioned or reply_to or thread):
            return
        if not message.content and not message.attachments:  # nothing for us, or no MESSAGE_CONTENT intent
            if reply_to and not mentioned and not self.intents.message_content:
                await message.reply(UNREADABLE, mention_author=False)
            return
        guild_id = message.guild.id if message.guild else getattr(message.channel, "guild_id", None)
        refusal = self.allow.refusal(guild_id, message.channel, message.channel.id, message.author)
        if refusal:
            await message.reply(refusal, mention_author=False)
            return
        prompt = message.content.replace(f"<@{me.id}>", "").replace(f"<@!{me.id}>", "").strip()
        context = await asyncio.to_thread(self.conversation, user_id, chat_id, reply_to, dm, thread)
        opens_thread = (
            self.settings.discord_threads
            and isinstance(message.channel, discord.TextChannel)
            and (context is None or context.parent_id is None)
        )

        async def refuse(text: str) -> None:
            await message.reply(text, mention_author=False, allowed_mentions=NO_MENTIONS)

        await self.answer_in_channel(message, user_id, prompt, [None], context, not dm, refuse, opens_thread)

    def conversation(self, user_id: str, chat_id: str, reply_to: str | None, dm: bool, thread: bool) -> Context | None:
        """(Blocking) the conversation a message continues; None: a new one (a mention elsewhere)."""
        try:
            self.chat.asking.ensure_queue()  # embedded mode: its Redis stops when idle, and holds the pointers
            if thread:
                return self.chat.conversations.shared_context(user_id, chat_id, reply_to)
            if dm or reply_to:
                return self.chat.conversations.context_for(user_id, chat_id, reply_to, group=not dm)
        except (QueueUnavailable, redis.RedisError) as exc:  # prepare() then says the queue is unavailable
            log.info("no conversation looked up: %s", exc)
        return None

    def replied_answer(self, message: discord.Message) -> str | None:
        """The id of the bot's message this one replies to in this channel, if any (an answer or not:
        history knows which of the bot's messages show answers)."""
        reference = message.reference
        if (
            reference is None
            or reference.message_id is None
            or reference.type is not discord.MessageReferenceType.reply
            or reference.channel_id != message.channel.id
        ):
            return None
        resolved = reference.resolved  # None when Discord did not include it: history decides
        if isinstance(resolved, discord.DeletedReferencedMessage):
            return None
        if isinstance(resolved, discord.Message) and (self.user is None or resolved.author.id != self.user.id):
            return None
        return str(reference.message_id)

    async def answer_in_channel(
        self,
        source: discord.Message,
        user_id: str,
        prompt: str,
        models: list[str | None],
        context: Context | None,
        group: bool,
        refuse: Callable[[str], Awaitable[None]],
        opens_thread: bool = False,
        attached: Attached | None = None,
    ) -> None:
        """Answer `source` with a status message replying to it (or opening a thread on it), edited as
        the answer grows and then replaced by it. `attached`: what the question carries, if not `source`'s
        attachments (a retry's kept images)."""
        async with self._taking_in(user_id), self._intake:  # its turn, after the user's previous question
            scope = scope_of(source.channel, source.channel.id)
            try:
                if attached is None and source.attachments:
                    attached = await attachments_of(source.attachments, self.settings)
                prompt = prompt or (default_question(attached) if attached else "")
                requests = await asyncio.to_thread(
                    self.chat.asking.prepare,
                    user_id,
                    str(source.channel.id),
                    prompt,
                    models,
                    context,
                    group,
                    scope,
                    attached,
                )
            except (InputError, AttachmentError) as exc:
                await refuse(str(exc))
                return
            thread = await self.open_thread(source, prompt) if opens_thread else None
            if thread is not None:  # the conversation lives in the thread: its answers are found there
                requests = [r.model_copy(update={"chat_id": str(thread.id)}) for r in requests]

            def post() -> Awaitable[discord.Message]:
                if thread is not None:
                    return thread.send(QUEUED, view=cancel_button(), allowed_mentions=NO_MENTIONS)
                return source.reply(QUEUED, view=cancel_button(), mention_author=False, allowed_mentions=NO_MENTIONS)

            try:
                status = await queued_status(post)
            except discord.HTTPException as exc:  # no right to post there: nothing is queued
                log.warning("cannot answer in channel %s: %s", source.channel.id, exc)
                return
            try:
                delivery = await asyncio.to_thread(
                    self.chat.asking.submit, requests, str(status.id) if status else None
                )
            except JobError as exc:
                await (status.edit(content=f"⚠️ {exc}", view=None) if status else refuse(f"⚠️ {exc}"))
                return
            fallback = ChannelTarget(self, delivery.chat_id, user_id, self.pacing)
            target = (
                MessageTarget(self, delivery.chat_id, str(status.id), fallback, self.pacing, QUEUED)
                if status
                else fallback
            )
        await self.follow(delivery, target)  # the intake's turn ends once the question is queued

    async def open_thread(self, message: discord.Message, prompt: str) -> discord.Thread | None:
        """A thread on the message that asked, made one conversation; None where the bot may not open one."""
        try:
            thread = await message.create_thread(name=thread_name(prompt))
        except (discord.HTTPException, ValueError) as exc:  # no permission; a server discord.py has not cached
            log.info("no thread opened in channel %s (%s); answering there", message.channel.id, exc)
            return None
        await asyncio.to_thread(self.chat.conversations.start_shared, str(thread.id))
        return thread

    async def follow(self, delivery: Delivery, target: ReplyTarget) -> None:
        results = []
        try:
            results = await self.chat.following.follow(delivery, target.status)
            budget = await self.chat.delivering(self.chat.budgets.day_lines, self.chat.platform, delivery.user_id)
            reply = make_reply(results, delivery.units, self.chat.settings.public_url, budget)
        except JobCancelled:
            reply = Reply([], CANCELLED)
        except JobError as exc:
            reply = Reply([], f"⚠️ {exc}")
        stored = [r.exchange_id for r in results if r.exchange_id is not None]
        buttons = retry_button() if len(results) == 1 and stored else None
        # before the user can see it and reply:
        await self.chat.delivering(self.chat.conversations.remember, delivery, results)
        try:
            shown = await retried(lambda: target.deliver(render_reply(reply), buttons), TRANSIENT, "an answer")
        except (discord.HTTPException, *TRANSIENT) as exc:
            log.error("could not deliver to channel %s (%s); kept for the next start", delivery.chat_id, exc)
            return
        # replies to any piece continue:
        await self.chat.delivering(self.chat.conversations.note_messages, delivery, results, shown)
        await self.chat.delivering(self.chat.following.delivered, delivery)

    # -- buttons -------------------------------------------------------------
    async def _pressed(self, interaction: discord.Interaction) -> discord.Message | None:
        """Answer the press at once (Discord wants an answer within 3 s), then check who pressed."""
        await interaction.response.defer()
        reason = self.allow.refusal(interaction.guild_id, interaction.channel, interaction.channel_id, interaction.user)
        if reason or interaction.message is None:
            await interaction.followup.send(reason or "That button has expired.", ephemeral=True)
            return None
        return interaction.message

    async def cancel_pressed(self, interaction: discord.Interaction) -> None:
        """Cancel the question the status message shows, if it is the presser's and still waits."""
        message = await self._pressed(interaction)
        if message is None:
            return
        user_id, chat_id, ref = str(interaction.user.id), str(interaction.channel_id), str(message.id)
        text = await text_of(lambda: self.chat.cancelling.cancel(user_id, chat_id, message_ref=ref))
        await interaction.followup.send(text, ephemeral=True)  # the follow task edits the status itself

    async def retry_pressed(self, interaction: discord.Interaction) -> None:
        """Ask the answer's question again with the same context (both answers stay in history)."""
        message = await self._pressed(interaction)
        if message is None:
            return
        user_id, chat_id = str(interaction.user.id), str(interaction.channel_id)
        group = interaction.guild_id is not None

        def again() -> tuple[str, str, Context, Attached]:
            exchange_id = self.chat.conversations.answer_id_at(chat_id, str(message.id))
            return self.chat.conversations.retry_context(
                user_id, chat_id, -1 if exchange_id is None else exchange_id, group
            )

        async def refuse(text: str) -> None:
            await interaction.followup.send(text, ephemeral=True)

        try:
            prompt, model, context, attached = await asyncio.to_thread(again)
        except InputError as exc:
            await refuse(str(exc))
            return
        await self.answer_in_channel(message, user_id, prompt, [model], context, group, refuse, attached=attached)


def run(settings: Settings, sync: bool = False) -> None:
    token = settings.discord_bot_token.get_secret_value()
    if sync:
        settings = settings.model_copy(update={"discord_sync_on_start": True})
    DiscordBot(settings).run(token, log_handler=None)
