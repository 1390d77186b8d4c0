"""What a chat user chose (default model, units, pinned box, system prompt) and their right to
have their prompts and answers forgotten; the configured defaults where they chose nothing."""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

from joulebot.chat import preference_cache
from joulebot.chat.asking import InputError
from joulebot.chat.forgetting import forget_user
from joulebot.config import Settings
from joulebot.exchange import Units
from joulebot.models import Catalog, ModelUnavailable, UnknownModelError
from joulebot.queueing.catalog import catalog_for_front_end
from joulebot.queueing.client import QueueClient, QueueUnavailable
from joulebot.queueing.deliveries import DeliveryBook

if TYPE_CHECKING:  # the store is opened by the chat service; `joulebot ask` imports no database
    from joulebot.history.store import HistoryStore


class Choices(NamedTuple):
    """What applies to a user's next question, their choices or the configured defaults."""

    model: str
    units: Units
    box: str | None  # pinned, else routing decides
    system: str | None  # the system prompt


class Preferences:
    def __init__(
        self, settings: Settings, platform: str, client: QueueClient, history: HistoryStore, deliveries: DeliveryBook
    ) -> None:
        self.settings, self.platform, self.client, self.history = settings, platform, client, history
        self.deliveries = deliveries
        self.cache: preference_cache.PreferenceCache[Choices] = preference_cache.PreferenceCache()

    def catalog(self) -> Catalog:
        return catalog_for_front_end(self.settings, self.client.connection)

    def of(self, user_id: str, system_chat: str | None = None, versions: tuple[object, ...] | None = None) -> Choices:
        """The user's default model, units, pinned box and system prompt (the chat's, given `system_chat`),
        with the configured defaults where none was chosen: one read, or none where `versions` (read by
        `preference_cache.read` for this message) vouch for the copy read before."""
        if versions is not None and (kept := self.cache.get(user_id, system_chat, versions)) is not None:
            return kept
        model, units, box, system = self.history.asking(self.platform, user_id, system_chat)
        chosen_units = units if units in ("joules", "watts") else self.settings.default_units
        choices = Choices(
            model or self.settings.default_model,
            chosen_units,  # type: ignore[arg-type]
            box,
            system or self.settings.system_prompt or None,
        )
        if versions is not None:
            self.cache.put(user_id, system_chat, versions, choices)
        return choices

    def _changed(self, user_id: str, chat_id: str | None = None) -> None:
        preference_cache.changed(self.settings, self.client.connection, self.platform, user_id, chat_id)

    def units(self, user_id: str) -> Units:
        return self.of(user_id).units

    def set_units(self, user_id: str, value: str) -> str:
        value = value.strip().lower()
        if value not in ("joules", "watts"):
            raise InputError("units are joules (energy) or watts (average power and duration): /units watts")
        self.history.set_preferences(self.platform, user_id, units=value)
        self._changed(user_id)
        return f"Units set to {value}."

    def default_model(self, user_id: str) -> str:
        return self.of(user_id).model

    def set_model(self, user_id: str, name: str) -> str:
        try:
            entry = self.catalog().resolve(name)
        except (UnknownModelError, ModelUnavailable) as exc:
            raise InputError(str(exc)) from None
        self.history.set_preferences(self.platform, user_id, model=entry.name)
        self._changed(user_id)
        return f"Your default model is now {entry.name} ({entry.size_label()})."

    def box_text(self, user_id: str, wanted: str = "") -> str:
        """/box: show the box that answers you; /box NAME pins one (if it is live); /box auto unpins."""
        wanted = wanted.strip()
        if self.client.fleet is None:
            return f"This joulebot has one measurement box ({self.settings.box_name}): nothing to choose."
        live = [v.name for v in self.client.boxes() if v.live]
        if not wanted:
            pinned = self.of(user_id).box
            now = f"pinned to {pinned}" if pinned else f"chosen for each question ({self.settings.routing})"
            return f"Your box: {now}. Live boxes: {', '.join(live) or 'none'}. /box NAME pins one, /box auto unpins."
        if wanted.lower() == "auto":
            self.history.set_preferences(self.platform, user_id, box="")
            self._changed(user_id)
            return f"Your questions go to the box chosen for each ({self.settings.routing})."
        match = next((name for name in live if name.lower() == wanted.lower()), None)
        if match is None:
            raise InputError(f"no live box named {wanted!r}; live boxes: {', '.join(live) or 'none'}")
        self.history.set_preferences(self.platform, user_id, box=match)
        self._changed(user_id)
        return f"Your questions now go to {match} (until /box auto)."

    def system_command(
        self,
        user_id: str,
        chat_id: str,
        argument: str,
        group: bool = False,
        place: str = "group",
        may_change: bool = True,
    ) -> str:
        """/system: show (no argument), `clear`, or set; in a group (a Discord channel: `place`) the group's.
        `may_change=False` (a member who may not configure the group): anyone may see a group's prompt,
        only its administrators set or clear it."""
        whose = f"this {place}'s" if group else "your"
        where = chat_id if group else None
        text = argument.strip()
        if text and not may_change:
            raise InputError(
                f"Only this {place}'s administrators can set or clear its system prompt; /system shows it."
            )
        if not text:
            own = self.history.system_prompt(self.platform, user_id, where)
            if own:
                return f"System prompt ({f'this {place}' if group else 'yours'}):\n{own}"
            if self.settings.system_prompt:
                return f"System prompt (the default, SYSTEM_PROMPT):\n{self.settings.system_prompt}"
            return f"No system prompt is set. Set {whose} with: /system You answer briefly."
        if text.lower() == "clear":
            self.history.set_system_prompt(self.platform, user_id, None, where)
            self._changed(user_id, where)
            return f"Cleared {whose} system prompt."
        if len(text) > self.settings.max_prompt_chars:
            raise InputError(
                f"the system prompt has {len(text)} characters; the maximum is {self.settings.max_prompt_chars}"
            )
        self.history.set_system_prompt(self.platform, user_id, text.replace("\x00", ""), where)
        self._changed(user_id, where)
        return f"Set {whose} system prompt. It applies from the next question."

    def forget(self, user_id: str) -> str:
        """Everywhere joulebot keeps them (see `forgetting`); questions still being answered are stored
        when answered, and the user is told so."""
        try:
            self.cache.drop(user_id)  # their system prompt too: forgotten here at once, elsewhere by its version
            forgotten = forget_user(self.history, self.client, self.platform, user_id)
        except QueueUnavailable:
            raise InputError("Nothing was deleted: joulebot's queue is unavailable; try again in a minute.") from None
        try:
            waiting = self.deliveries.pending_for(user_id)
        except QueueUnavailable:  # forgotten all the same: only the note on questions still waiting is lost
            waiting = 0
        return forgotten.told(waiting, "/forget")
