"""Users and what they chose: default model, units, pinned box, and the system prompt (theirs, or a
group chat's for everyone in it)."""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

from sqlalchemy import Connection, Engine, String, bindparam, select, update
from sqlalchemy.dialects import postgresql, sqlite

from joulebot.history.tables import ChatPreference, Exchange, User, now

USERS = User.__table__  # type: ignore[attr-defined]
CHATS = ChatPreference.__table__  # type: ignore[attr-defined]


class Asking(NamedTuple):
    """A user's choices for a new question (see `Users.asking`); None: not chosen."""

    model: str | None
    units: str | None
    box: str | None
    system_prompt: str | None


@functools.cache
def _asking_query(by_chat: bool) -> Any:
    """`Users.asking`'s statement, built once (it runs for every chat message). Scalar subqueries:
    exactly one row, whether or not the user or the chat has one."""
    platform, user_id = bindparam("platform", type_=String), bindparam("user", type_=String)
    user = (USERS.c.platform == platform, USERS.c.platform_user_id == user_id)
    prompt = (
        select(CHATS.c.system_prompt).where(CHATS.c.platform == platform, CHATS.c.chat_id == bindparam("chat"))
        if by_chat
        else select(USERS.c.system_prompt).where(*user)
    )
    chosen = [
        select(column).where(*user).scalar_subquery() for column in (USERS.c.default_model, USERS.c.units, USERS.c.box)
    ]
    return select(*chosen, prompt.scalar_subquery())


def _insert(connection: Connection, table: Any) -> Any:
    """INSERT with ON CONFLICT, in the dialect of `connection`."""
    return (postgresql if connection.dialect.name == "postgresql" else sqlite).insert(table)


class Users:
    """The users' rows and preferences (a part of HistoryStore)."""

    engine: Engine
    _user_ids: dict[tuple[str, str], int]  # (platform, platform user id) → users.id, once committed

    def _user_id(self, connection: Connection, platform: str, platform_user_id: str) -> int:
        """The user's row id, made if new, in the caller's transaction (Core: an ORM session costs
        ~3 ms here, on the answer's path for every new user). The caller keeps it in `_user_ids`
        once its transaction committed: a user row is never deleted (forgetting clears its
        preferences, not the row), so the id of a (platform, user) never changes."""
        known = self._user_ids.get((platform, platform_user_id))
        if known is not None:
            return known
        new = {"platform": platform, "platform_user_id": platform_user_id, "created_at": now()}
        # made meanwhile by another process (a bot, another box): that row is the user's
        connection.execute(_insert(connection, USERS).values(new).on_conflict_do_nothing())
        found = USERS.c.platform == platform, USERS.c.platform_user_id == platform_user_id
        return connection.execute(select(USERS.c.id).where(*found)).scalar_one()

    def _set_user(self, platform: str, platform_user_id: str, values: dict[str, str | None]) -> None:
        """Set columns of the user's row (made if new), in one transaction."""
        with self.engine.begin() as connection:
            user_id = self._user_id(connection, platform, platform_user_id)
            if values:
                connection.execute(update(USERS).where(USERS.c.id == user_id).values(values))
        self._user_ids[(platform, platform_user_id)] = user_id

    def asking(self, platform: str, platform_user_id: str, chat_id: str | None = None) -> Asking:
        """What a new question of this user needs, in one read (once per chat message): their default
        model, units and pinned box, and the system prompt — the chat's when `chat_id` is given (groups),
        else their own. None where nothing was chosen; no user row is made."""
        values = {"platform": platform, "user": platform_user_id, "chat": chat_id}
        with self.engine.connect() as connection:
            return Asking(*connection.execute(_asking_query(chat_id is not None), values).one())

    def preferences(self, platform: str, platform_user_id: str) -> tuple[str | None, str | None, str | None]:
        """(default model, units, pinned box) the user chose, None where they did not."""
        return self.asking(platform, platform_user_id)[:3]

    def set_preferences(
        self,
        platform: str,
        platform_user_id: str,
        *,
        model: str | None = None,
        units: str | None = None,
        box: str | None = None,
    ) -> None:
        """Set what is given; `box=""` unpins (routing decides again)."""
        chosen = {"default_model": model, "units": units, "box": box}
        values: dict[str, str | None] = {column: value for column, value in chosen.items() if value is not None}
        if box is not None:
            values["box"] = box or None
        self._set_user(platform, platform_user_id, values)

    def system_prompt(self, platform: str, platform_user_id: str, chat_id: str | None = None) -> str | None:
        """The chat's system prompt when `chat_id` is given (groups), else the user's; None if unset."""
        return self.asking(platform, platform_user_id, chat_id).system_prompt

    def set_system_prompt(
        self, platform: str, platform_user_id: str, text: str | None, chat_id: str | None = None
    ) -> None:
        """Set (or with None, clear) the user's system prompt, or the group chat's when `chat_id` is given."""
        if chat_id is None:
            self._set_user(platform, platform_user_id, {"system_prompt": text})
            return
        row = {"platform": platform, "chat_id": chat_id, "system_prompt": text}
        with self.engine.begin() as connection:
            statement = _insert(connection, CHATS).values(row)
            connection.execute(
                statement.on_conflict_do_update(
                    index_elements=["platform", "chat_id"], set_={"system_prompt": statement.excluded.system_prompt}
                )
            )

    def owner(self, exchange: Exchange) -> str | None:
        """The platform user id who asked an exchange (None once forgotten)."""
        if exchange.user_id is None:
            return None
        with self.engine.connect() as connection:
            query = select(USERS.c.platform_user_id).where(USERS.c.id == exchange.user_id)
            return connection.execute(query).scalar()
