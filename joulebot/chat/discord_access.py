"""Who may use the Discord bot where: the optional allow-lists of guilds, channels and roles, checked
before every slash command (a refusal only the caller sees) and every message."""

from __future__ import annotations

import discord
from discord import app_commands

from joulebot.config import Settings


def scope_of(channel: object, channel_id: int | None) -> str:
    """The channel whose system prompt and allow-list apply: a thread's parent, else the channel itself."""
    parent = channel.parent_id if isinstance(channel, discord.Thread) else None
    return str(parent or channel_id)


class AllowList:
    """Optional allow-lists of guilds, channels (a thread counts as its channel) and roles."""

    def __init__(self, settings: Settings) -> None:
        self.guilds = Settings.id_set(settings.discord_allowed_guilds)
        self.channels = Settings.id_set(settings.discord_allowed_channels)
        self.roles = Settings.id_set(settings.discord_allowed_roles)

    def refusal(self, guild_id: int | None, channel: object, channel_id: int | None, user: object) -> str | None:
        if self.guilds and str(guild_id) not in self.guilds:
            return "joulebot is not enabled in this server."
        if self.channels and not {str(channel_id), scope_of(channel, channel_id)} & self.channels:
            return "joulebot does not answer in this channel."
        if self.roles and not {str(r.id) for r in getattr(user, "roles", [])} & self.roles:
            return "You need one of the roles allowed to use joulebot."
        return None


class GuardedTree(app_commands.CommandTree):
    """Slash commands only for who the allow-lists let through; a refusal only the caller sees."""

    def __init__(self, client: discord.Client, allow: AllowList) -> None:
        super().__init__(client)
        self.allow = allow

    async def interaction_check(self, interaction: discord.Interaction) -> bool:
        reason = self.allow.refusal(interaction.guild_id, interaction.channel, interaction.channel_id, interaction.user)
        if reason:
            await interaction.response.send_message(reason, ephemeral=True)
            return False
        return True
