"""The Discord bot (discord.py 2.7): /ask and /compare in servers, with the energy bill.

Slash commands only, so no privileged intent is needed. Each command defers at
once, shows the queue position in the deferred reply, then replaces it with the
answer (embeds, footer in the embed footer). An interaction token lives 15
minutes: a later answer is posted into the channel, mentioning the user. What is
owed is kept in Redis, so a restarted bot still delivers it.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Literal

import discord
from discord import app_commands

from joulebot.chat.core import HELP, ChatCore, InputError, JobError, QueueUnavailable, Reply, make_reply, spawn
from joulebot.chat.deliveries import Delivery
from joulebot.chat.discord_format import Message, render, render_partial
from joulebot.config import Settings
from joulebot.queueing.client import JobCancelled

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


async def model_names(interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
    """Autocomplete: the available models whose name contains what was typed."""
    bot = interaction.client
    assert isinstance(bot, DiscordBot)
    catalog = await asyncio.to_thread(bot.core.catalog)
    names = [e.name for e in catalog.available() if current.lower() in e.name.lower()]
    return [app_commands.Choice(name=n, value=n) for n in names[:25]]


class ReplyTarget:
    """Where a reply goes: the interaction while its token lives, else the channel."""

    async def status(self, text: str, partial: str | None = None, *, urgent: bool = False) -> None: ...

    async def deliver(self, messages: list[Message]) -> None: ...


class InteractionTarget(ReplyTarget):
    def __init__(self, interaction: discord.Interaction, fallback: ReplyTarget) -> None:
        self.interaction = interaction
        self.fallback = fallback
        self.shown = ""
        self.edited_at = 0.0

    def _alive(self) -> bool:
        return datetime.now(UTC) - self.interaction.created_at < TOKEN_LIFETIME - TOKEN_MARGIN

    async def status(self, text: str, partial: str | None = None, *, urgent: bool = False) -> None:
        """The status line, or the answer so far while it is generated (one embed, Markdown closed)."""
        now = time.monotonic()
        shown = partial or text
        if shown == self.shown or not self._alive():
            return
        if now - self.edited_at < STATUS_EDIT_INTERVAL_S:
            if not urgent:
                return
            await asyncio.sleep(self.edited_at + STATUS_EDIT_INTERVAL_S - now)  # a notice the user must see
            now = time.monotonic()
        try:
            if partial:
                message = render_partial(partial, text)
                await self.interaction.edit_original_response(content=None, embeds=to_embeds(message))
            else:
                await self.interaction.edit_original_response(content=text)
            self.shown, self.edited_at = shown, now
        except discord.HTTPException as exc:
            log.info("status edit skipped: %s", exc)

    async def deliver(self, messages: list[Message]) -> None:
        if not self._alive():
            await self.fallback.deliver(messages)
            return
        try:
            first, *rest = messages
            await self.interaction.edit_original_response(
                content=first.content or None, embeds=to_embeds(first), allowed_mentions=NO_MENTIONS
            )
            for message in rest:
                await self.interaction.followup.send(
                    content=message.content or discord.utils.MISSING,
                    embeds=to_embeds(message),
                    allowed_mentions=NO_MENTIONS,
                )
        except (discord.NotFound, discord.Forbidden) as exc:  # token gone or message deleted
            log.info("interaction reply failed (%s); posting into the channel", exc)
            await self.fallback.deliver(messages)


class ChannelTarget(ReplyTarget):
    def __init__(self, client: discord.Client, channel_id: str, user_id: str) -> None:
        self.client, self.channel_id, self.user_id = client, channel_id, user_id

    async def deliver(self, messages: list[Message]) -> None:
        channel = self.client.get_channel(int(self.channel_id)) or await self.client.fetch_channel(int(self.channel_id))
        mention = discord.AllowedMentions(everyone=False, roles=False, users=[discord.Object(int(self.user_id))])
        for index, message in enumerate(messages):
            prefix = f"<@{self.user_id}> here is your answer.\n" if index == 0 else ""
            await channel.send(  # type: ignore[union-attr]
                content=(prefix + message.content) or None,
                embeds=to_embeds(message),
                allowed_mentions=mention if index == 0 else NO_MENTIONS,
            )


class GuardedTree(app_commands.CommandTree):
    """Optional allow-lists of guilds, channels and roles; a refusal only the caller sees."""

    def __init__(self, client: discord.Client, settings: Settings) -> None:
        super().__init__(client)
        self.guilds = Settings.id_set(settings.discord_allowed_guilds)
        self.channels = Settings.id_set(settings.discord_allowed_channels)
        self.roles = Settings.id_set(settings.discord_allowed_roles)

    async def interaction_check(self, interaction: discord.Interaction) -> bool:
        reason = None
        if self.guilds and str(interaction.guild_id) not in self.guilds:
            reason = "joulebot is not enabled in this server."
        elif self.channels and str(interaction.channel_id) not in self.channels:
            reason = "joulebot does not answer in this channel."
        elif self.roles:
            roles = {str(r.id) for r in getattr(interaction.user, "roles", [])}
            if not roles & self.roles:
                reason = "You need one of the roles allowed to use joulebot."
        if reason:
            await interaction.response.send_message(reason, ephemeral=True)
            return False
        return True


class DiscordBot(discord.Client):
    def __init__(self, settings: Settings) -> None:
        super().__init__(intents=discord.Intents.default())  # no message content: slash commands only
        self.settings = settings
        self.core = ChatCore(settings, "discord")
        self.tree = GuardedTree(self, settings)
        self._resumed = False
        self._tasks: set[asyncio.Task] = set()
        self._register()

    # -- start-up ----------------------------------------------------------
    def commands_hash(self) -> str:
        payload = [command.to_dict(self.tree) for command in self.tree.get_commands()]
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()

    async def sync_commands(self, force: bool = False, sync: Callable[[], Awaitable[object]] | None = None) -> bool:
        """Register the commands with Discord only when they changed (200 creations a day per guild)."""
        current = self.commands_hash()
        if not force and await asyncio.to_thread(self.core.commands_registered, current):
            return False
        await (sync or self.tree.sync)()
        await asyncio.to_thread(self.core.note_commands_registered, current)
        log.info("slash commands registered")
        return True

    async def setup_hook(self) -> None:
        try:
            await asyncio.to_thread(self.core.ensure_queue)
            await self.sync_commands(force=self.settings.discord_sync_on_start)
        except QueueUnavailable as exc:  # the bot still starts: questions get "queue unavailable" until it is back
            log.warning("%s; slash commands not checked (run with --sync once it is back if they changed)", exc)

    async def on_ready(self) -> None:
        if self._resumed:
            return
        self._resumed = True
        for delivery in await asyncio.to_thread(self.core.pending_deliveries):
            spawn(self._tasks, self.follow(delivery, self.resumed_target(delivery)), "resuming an answer")

    def resumed_target(self, delivery: Delivery) -> ReplyTarget:
        """After a restart: a follow-up through the interaction's webhook while its token lives."""
        channel = ChannelTarget(self, delivery.chat_id, delivery.user_id)
        if delivery.reply_to and datetime.now(UTC) - delivery.created_at < TOKEN_LIFETIME - TOKEN_MARGIN:
            app_id, token = delivery.reply_to.split(":", 1)
            return WebhookTarget(self, int(app_id), token, channel)
        return channel

    # -- the path of one question ------------------------------------------
    async def ask(self, interaction: discord.Interaction, prompt: str, models: list[str | None]) -> None:
        await interaction.response.defer(thinking=True)
        user_id, channel_id = str(interaction.user.id), str(interaction.channel_id)
        try:
            requests = await asyncio.to_thread(self.core.prepare, user_id, channel_id, prompt, models)
            delivery = await asyncio.to_thread(
                self.core.submit, requests, None, f"{interaction.application_id}:{interaction.token}"
            )
        except (InputError, JobError) as exc:
            await interaction.delete_original_response()
            await interaction.followup.send(str(exc), ephemeral=True)
            return
        await self.follow(delivery, InteractionTarget(interaction, ChannelTarget(self, channel_id, user_id)))

    async def follow(self, delivery: Delivery, target: ReplyTarget) -> None:
        try:
            results = await self.core.follow(delivery, target.status)
            reply = make_reply(results, delivery.units, self.core.settings.public_url)
        except JobCancelled as exc:
            reply = Reply([], f"🚫 {exc}")
        except JobError as exc:
            reply = Reply([], f"⚠️ {exc}")
        try:
            await target.deliver(render_reply(reply))
        except discord.HTTPException as exc:
            log.error("could not deliver to channel %s (%s); kept for the next start", delivery.chat_id, exc)
            return
        await asyncio.to_thread(self.core.delivered, delivery)

    # -- commands -------------------------------------------------------------
    def _register(self) -> None:
        """Every slash command, one line each; discord.py passes this bot as `self` to the methods."""
        for name, description, callback in (
            ("ask", "Ask a model; the answer comes with its energy bill", self.cmd_ask),
            ("compare", "Ask two models the same thing and see which was greener", self.cmd_compare),
            ("model", "Show or choose your default model", self.cmd_model),
            ("models", "The models, their size and measured energy per answer", self.cmd_models),
            ("units", "Show energy in joules, or average power and duration in watts", self.cmd_units),
            ("history", "Your last exchanges (only you see them)", self.cmd_history),
            ("forget", "Delete your prompts and answers (only you see this)", self.cmd_forget),
            ("system", "Show, set or clear your system prompt (text, or 'clear')", self.cmd_system),
            ("cancel", "Cancel your questions still waiting in the queue", self.cmd_cancel),
            ("stats", "Average energy per model, per box", self.cmd_stats),
            ("boxes", "The measurement boxes: grid, intensity, meters, queue", self.cmd_boxes),
            ("box", "Pin the box that answers you (a name), or let joulebot choose (auto)", self.cmd_box),
            ("help", "What joulebot does", self.cmd_help),
        ):
            self.tree.add_command(app_commands.Command(name=name, description=description, callback=callback))

    async def private(self, interaction: discord.Interaction, produce: Callable[[], str]) -> None:
        """An ephemeral reply with what `produce` (blocking) returns, or its refusal."""
        text = await self.core.text_of(produce)
        await interaction.response.send_message(text[:2000], ephemeral=True, allowed_mentions=NO_MENTIONS)

    @app_commands.describe(prompt="what to ask", model="which model (default: yours)")
    @app_commands.autocomplete(model=model_names)
    async def cmd_ask(self, interaction: discord.Interaction, prompt: str, model: str | None = None) -> None:
        await self.ask(interaction, prompt, [model])

    @app_commands.autocomplete(model_a=model_names, model_b=model_names)
    async def cmd_compare(self, interaction: discord.Interaction, model_a: str, model_b: str, prompt: str) -> None:
        await self.ask(interaction, prompt, [model_a, model_b])

    @app_commands.autocomplete(name=model_names)
    async def cmd_model(self, interaction: discord.Interaction, name: str | None = None) -> None:
        user_id = str(interaction.user.id)
        if name:
            await self.private(interaction, lambda: self.core.set_model(user_id, name))
        else:
            await self.private(interaction, lambda: f"Your default model is {self.core.default_model(user_id)}.")

    async def cmd_models(self, interaction: discord.Interaction) -> None:
        await self.private(interaction, self.core.models_text)

    async def cmd_units(
        self, interaction: discord.Interaction, value: Literal["joules", "watts"] | None = None
    ) -> None:
        user_id = str(interaction.user.id)
        if value:
            await self.private(interaction, lambda: self.core.set_units(user_id, value))
        else:
            await self.private(
                interaction, lambda: f"Units: {self.core.units(user_id)}. Change with /units joules|watts."
            )

    async def cmd_history(self, interaction: discord.Interaction) -> None:
        user_id = str(interaction.user.id)
        await self.private(interaction, lambda: self.core.history_text(user_id, limit=3))

    @app_commands.describe(confirm="set to True to delete")
    async def cmd_forget(self, interaction: discord.Interaction, confirm: bool = False) -> None:
        user_id = str(interaction.user.id)
        if confirm:
            await self.private(interaction, lambda: self.core.forget(user_id))
            return
        await self.private(
            interaction,
            lambda: (
                "This deletes all your prompts and answers (anonymous energy figures stay). "
                "Run /forget confirm:True to go ahead."
            ),
        )

    @app_commands.describe(text="the system prompt; 'clear' removes it; empty shows it")
    async def cmd_system(self, interaction: discord.Interaction, text: str | None = None) -> None:
        user_id, channel_id = str(interaction.user.id), str(interaction.channel_id)
        await self.private(interaction, lambda: self.core.system_command(user_id, channel_id, text or ""))

    async def cmd_cancel(self, interaction: discord.Interaction) -> None:
        user_id, channel_id = str(interaction.user.id), str(interaction.channel_id)
        await self.private(interaction, lambda: self.core.cancel(user_id, channel_id))

    async def cmd_stats(self, interaction: discord.Interaction) -> None:
        text = await asyncio.to_thread(self.core.stats_text)
        await interaction.response.send_message(text[:2000], allowed_mentions=NO_MENTIONS)

    async def cmd_boxes(self, interaction: discord.Interaction) -> None:
        await self.private(interaction, self.core.boxes_text)

    @app_commands.describe(name="a box from /boxes, or auto")
    async def cmd_box(self, interaction: discord.Interaction, name: str | None = None) -> None:
        user_id = str(interaction.user.id)
        await self.private(interaction, lambda: self.core.box_text(user_id, name or ""))

    async def cmd_help(self, interaction: discord.Interaction) -> None:
        text = HELP.replace("/compare model_a model_b prompt", "/compare")
        await interaction.response.send_message(text, ephemeral=True)


class WebhookTarget(ReplyTarget):
    """A resumed delivery: follow-up messages through the interaction's webhook."""

    def __init__(self, client: discord.Client, application_id: int, token: str, fallback: ReplyTarget) -> None:
        self.client, self.application_id, self.token, self.fallback = client, application_id, token, fallback

    async def deliver(self, messages: list[Message]) -> None:
        webhook = discord.Webhook.partial(self.application_id, self.token, client=self.client)
        try:
            for message in messages:
                await webhook.send(
                    content=message.content or discord.utils.MISSING,
                    embeds=to_embeds(message),
                    allowed_mentions=NO_MENTIONS,
                )
        except (discord.NotFound, discord.Forbidden):
            await self.fallback.deliver(messages)


def run(settings: Settings, sync: bool = False) -> None:
    token = settings.discord_bot_token.get_secret_value()
    if sync:
        settings = settings.model_copy(update={"discord_sync_on_start": True})
    DiscordBot(settings).run(token, log_handler=None)
