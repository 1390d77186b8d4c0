"""The buttons under Discord answers: Cancel while a question waits, Retry under an answer.

They are persistent: fixed custom_ids, and one view of each is registered when the bot
starts (`Client.add_view`), so a button under a message from before a restart still works.
The ids carry no data: what a press acts on is found from the message the button is under
(the status message of a delivery; the answer recorded as the exchange's message_ref).
Each message gets the components of a stopped view, so discord.py does not track a view
per message (they would pile up for ever): the registered view answers every press.
"""

from __future__ import annotations

from typing import Protocol

import discord

CANCEL_ID = "joulebot:cancel"
RETRY_ID = "joulebot:retry"


class ButtonHandler(Protocol):
    async def cancel_pressed(self, interaction: discord.Interaction) -> None: ...

    async def retry_pressed(self, interaction: discord.Interaction) -> None: ...


class PersistentView(discord.ui.View):
    """A view that never times out (it is registered once with `add_view`); presses go to `handler`."""

    def __init__(self, handler: ButtonHandler | None = None) -> None:
        super().__init__(timeout=None)
        self.handler = handler


class CancelView(PersistentView):
    """Under a status message while its question waits in the queue."""

    @discord.ui.button(label="Cancel", style=discord.ButtonStyle.secondary, emoji="✖️", custom_id=CANCEL_ID)
    async def cancel(self, interaction: discord.Interaction, button: discord.ui.Button) -> None:
        if self.handler is not None:
            await self.handler.cancel_pressed(interaction)


class RetryView(PersistentView):
    """Under an answer: ask the same question again, with the same context."""

    @discord.ui.button(label="Retry", style=discord.ButtonStyle.secondary, emoji="🔄", custom_id=RETRY_ID)
    async def retry(self, interaction: discord.Interaction, button: discord.ui.Button) -> None:
        if self.handler is not None:
            await self.handler.retry_pressed(interaction)


def _components(view: discord.ui.View) -> discord.ui.View:
    view.stop()  # discord.py stores no stopped view for the message: the registered one answers
    return view


def cancel_button() -> discord.ui.View:
    return _components(CancelView())


def retry_button() -> discord.ui.View:
    return _components(RetryView())
