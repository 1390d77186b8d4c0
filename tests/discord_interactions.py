"""The part of a discord.Interaction the bot uses, recording every call, and a slash command run
through the bot's own command tree with one."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

from joulebot.chat.discord_bot import DiscordBot


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, dict]] = []

    def record(self, name: str, **kwargs) -> None:
        self.calls.append((name, kwargs))


class RecordedInteraction:
    """The part of discord.Interaction the bot uses, recording every call in order."""

    def __init__(self, user_id: int, channel_id: int = 900, guild_id: int = 800, age: timedelta = timedelta()):
        self.log = Recorder()
        self.user = SimpleNamespace(id=user_id, roles=[SimpleNamespace(id=42)], mention=f"<@{user_id}>")
        self.channel_id, self.guild_id = channel_id, guild_id
        self.channel = None  # not in discord.py's cache: the bot goes by channel_id
        self.created_at = datetime.now(UTC) - age
        self.application_id, self.token = 1234, "interaction-token"
        log = self.log
        done = {"v": False}

        class Response:
            async def defer(self, **kwargs):
                done["v"] = True
                log.record("defer", **kwargs)

            async def send_message(self, content=None, **kwargs):
                done["v"] = True
                log.record("send_message", content=content, **kwargs)

            def is_done(self):
                return done["v"]

        class Followup:
            async def send(self, content=None, **kwargs):
                log.record("followup", content=content, **kwargs)

        self.response, self.followup = Response(), Followup()

    async def edit_original_response(self, **kwargs):
        self.log.record("edit", **kwargs)
        return SimpleNamespace(id=4242)  # the message discord.py returns: the status, later the answer

    async def delete_original_response(self):
        self.log.record("delete")

    def named(self, name: str) -> list[dict]:
        return [kwargs for n, kwargs in self.log.calls if n == name]


def run(bot: DiscordBot, command: str, interaction: RecordedInteraction, **options) -> RecordedInteraction:
    interaction.client = bot
    slash = bot.tree.get_command(command)
    asyncio.run(slash.callback(slash.binding, interaction, **options))
    return interaction
