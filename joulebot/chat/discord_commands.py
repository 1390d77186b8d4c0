"""Discord's slash commands: one line each in `_register`, their callbacks, and the digest that keeps
them from being registered again while unchanged (Discord allows 200 creations a day per guild)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Literal, cast

import discord
from discord import app_commands

from joulebot.chat.background import text_of
from joulebot.chat.discord_access import scope_of
from joulebot.chat.discord_targets import NO_MENTIONS
from joulebot.chat.help_text import HELP
from joulebot.keys import commands_key
from joulebot.queueing.client import queue_errors

if TYPE_CHECKING:
    from joulebot.chat.discord_bot import DiscordBot

log = logging.getLogger(__name__)

DISCORD_HELP = HELP.replace("/compare model_a model_b prompt", "/compare") + (
    "\n\nIn a server, mention me to start a conversation (I answer in a thread; every message there "
    "continues it); reply to one of my answers to continue from it. In a DM every message continues "
    "the conversation until /new."
)


async def model_names(interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
    """Autocomplete: the available models whose name contains what was typed."""
    bot = cast("DiscordBot", interaction.client)
    catalog = await asyncio.to_thread(bot.chat.preferences.catalog)
    names = [e.name for e in catalog.available() if current.lower() in e.name.lower()]
    return [app_commands.Choice(name=n, value=n) for n in names[:25]]


class SlashCommands:
    """The bot's slash commands, registered on its command tree when made."""

    def __init__(self, bot: DiscordBot) -> None:
        self.bot = bot
        self.tree = bot.tree
        self._register()

    def digest(self) -> str:
        payload = [command.to_dict(self.tree) for command in self.tree.get_commands()]
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()

    async def sync(self, force: bool = False, sync: Callable[[], Awaitable[object]] | None = None) -> bool:
        """Register the commands with Discord only when they changed (200 creations a day per guild)."""
        current = self.digest()
        if not force and await asyncio.to_thread(self._registered, current):
            return False
        await (sync or self.tree.sync)()
        await asyncio.to_thread(self._note_registered, current)
        log.info("slash commands registered")
        return True

    def _registered(self, digest: str) -> bool:
        """The command list with this digest was registered already (kept in Redis, per queue)."""
        chat = self.bot.chat
        with queue_errors(chat.settings):
            stored = chat.client.connection.get(commands_key(chat.platform, chat.settings.queue_name))
        return stored is not None and (stored.decode() if isinstance(stored, bytes) else stored) == digest

    def _note_registered(self, digest: str) -> None:
        chat = self.bot.chat
        with queue_errors(chat.settings):
            chat.client.connection.set(commands_key(chat.platform, chat.settings.queue_name), digest)

    def _register(self) -> None:
        """Every slash command, one line each (discord.py calls the bound methods of this object)."""
        for name, description, callback in (
            ("ask", "Ask a model (a new conversation); the answer comes with its energy bill", self.cmd_ask),
            ("compare", "Ask two models the same thing and see which was greener", self.cmd_compare),
            ("new", "Start a new conversation in this DM (in a server: mention me)", self.cmd_new),
            ("model", "Show or choose your default model", self.cmd_model),
            ("models", "The models, their size and measured energy per answer", self.cmd_models),
            ("units", "Show energy in joules, or average power and duration in watts", self.cmd_units),
            ("history", "Your last exchanges (only you see them)", self.cmd_history),
            ("forget", "Delete your prompts and answers (only you see this)", self.cmd_forget),
            (
                "system",
                "Show, set or clear the system prompt (yours in a DM, the channel's in a server)",
                self.cmd_system,
            ),
            ("cancel", "Cancel your questions still waiting in the queue", self.cmd_cancel),
            ("stats", "Average energy per model, per box", self.cmd_stats),
            ("boxes", "The measurement boxes: grid, intensity, meters, queue", self.cmd_boxes),
            ("box", "Pin the box that answers you (a name), or let joulebot choose (auto)", self.cmd_box),
            ("help", "What joulebot does", self.cmd_help),
        ):
            self.tree.add_command(app_commands.Command(name=name, description=description, callback=callback))

    async def private(self, interaction: discord.Interaction, produce: Callable[[], str]) -> None:
        """An ephemeral reply with what `produce` (blocking) returns, or its refusal."""
        text = await text_of(produce)
        await interaction.response.send_message(text[:2000], ephemeral=True, allowed_mentions=NO_MENTIONS)

    @app_commands.describe(
        prompt="what to ask", model="which model (default: yours)", image="an image for a vision model to look at"
    )
    @app_commands.autocomplete(model=model_names)
    async def cmd_ask(
        self,
        interaction: discord.Interaction,
        prompt: str,
        model: str | None = None,
        image: discord.Attachment | None = None,
    ) -> None:
        await self.bot.ask(interaction, prompt, [model], image)

    @app_commands.autocomplete(model_a=model_names, model_b=model_names)
    async def cmd_compare(self, interaction: discord.Interaction, model_a: str, model_b: str, prompt: str) -> None:
        await self.bot.ask(interaction, prompt, [model_a, model_b])

    async def cmd_new(self, interaction: discord.Interaction) -> None:
        user_id, channel_id = str(interaction.user.id), str(interaction.channel_id)
        if interaction.guild_id is None:
            await self.private(interaction, lambda: self.bot.chat.conversations.new_conversation(user_id, channel_id))
        else:
            await self.private(
                interaction,
                lambda: "In a server, a mention of me starts a new conversation; replies and my threads continue one.",
            )

    @app_commands.autocomplete(name=model_names)
    async def cmd_model(self, interaction: discord.Interaction, name: str | None = None) -> None:
        user_id = str(interaction.user.id)
        if name:
            await self.private(interaction, lambda: self.bot.chat.preferences.set_model(user_id, name))
        else:
            await self.private(
                interaction, lambda: f"Your default model is {self.bot.chat.preferences.default_model(user_id)}."
            )

    async def cmd_models(self, interaction: discord.Interaction) -> None:
        await self.private(interaction, self.bot.chat.reports.models_text)

    async def cmd_units(
        self, interaction: discord.Interaction, value: Literal["joules", "watts"] | None = None
    ) -> None:
        user_id = str(interaction.user.id)
        if value:
            await self.private(interaction, lambda: self.bot.chat.preferences.set_units(user_id, value))
        else:
            await self.private(
                interaction,
                lambda: f"Units: {self.bot.chat.preferences.units(user_id)}. Change with /units joules|watts.",
            )

    async def cmd_history(self, interaction: discord.Interaction) -> None:
        user_id = str(interaction.user.id)
        await self.private(interaction, lambda: self.bot.chat.reports.history_text(user_id, limit=3))

    @app_commands.describe(confirm="set to True to delete")
    async def cmd_forget(self, interaction: discord.Interaction, confirm: bool = False) -> None:
        user_id = str(interaction.user.id)
        if confirm:
            await self.private(interaction, lambda: self.bot.chat.preferences.forget(user_id))
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
        """In a DM the user's own prompt. In a server the channel's (a thread: its channel's): anyone
        may see it; setting or clearing it needs the Manage Server permission."""
        user_id, argument = str(interaction.user.id), text or ""
        if interaction.guild_id is None:
            channel_id = str(interaction.channel_id)
            await self.private(
                interaction, lambda: self.bot.chat.preferences.system_command(user_id, channel_id, argument)
            )
            return
        if argument.strip() and not interaction.permissions.manage_guild:
            await interaction.response.send_message(
                "Only members with the Manage Server permission can set or clear this channel's system prompt; "
                "/system without text shows it.",
                ephemeral=True,
            )
            return
        scope = scope_of(interaction.channel, interaction.channel_id)
        await self.private(
            interaction,
            lambda: self.bot.chat.preferences.system_command(user_id, scope, argument, group=True, place="channel"),
        )

    async def cmd_cancel(self, interaction: discord.Interaction) -> None:
        user_id, channel_id = str(interaction.user.id), str(interaction.channel_id)
        await self.private(interaction, lambda: self.bot.chat.cancelling.cancel(user_id, channel_id))

    async def cmd_stats(self, interaction: discord.Interaction) -> None:
        text = await asyncio.to_thread(self.bot.chat.reports.stats_text, str(interaction.user.id))
        await interaction.response.send_message(text[:2000], allowed_mentions=NO_MENTIONS)

    async def cmd_boxes(self, interaction: discord.Interaction) -> None:
        await self.private(interaction, self.bot.chat.reports.boxes_text)

    @app_commands.describe(name="a box from /boxes, or auto")
    async def cmd_box(self, interaction: discord.Interaction, name: str | None = None) -> None:
        user_id = str(interaction.user.id)
        await self.private(interaction, lambda: self.bot.chat.preferences.box_text(user_id, name or ""))

    async def cmd_help(self, interaction: discord.Interaction) -> None:
        await interaction.response.send_message(DISCORD_HELP, ephemeral=True)
