"""Exchanges and conversations: storing a finished answer, a user's own history, the platform messages
that show an answer, and the thread a reply continues."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Select, insert, select

from joulebot.exchange import Result
from joulebot.history import rollup
from joulebot.history.engine import starting_with
from joulebot.history.hint import GreenerHint
from joulebot.history.tables import Exchange, ExchangeMessage, now
from joulebot.history.users import USERS, Users

EXCHANGES = Exchange.__table__  # type: ignore[attr-defined]
MESSAGES = ExchangeMessage.__table__  # type: ignore[attr-defined]
MAX_TURNS = 200  # the longest thread a conversation continues


def as_exchanges(connection: Connection, query: Select) -> list[Exchange]:
    """The rows of a query over every column of `exchanges`, as Exchange objects."""
    return [Exchange.model_validate(row._mapping) for row in connection.execute(query)]


def of_user(platform: str, platform_user_id: str) -> Select:
    """A user's own exchanges, newest first."""
    user = USERS.c.platform == platform, USERS.c.platform_user_id == platform_user_id
    return select(EXCHANGES).join(USERS, EXCHANGES.c.user_id == USERS.c.id).where(*user).order_by(EXCHANGES.c.id.desc())


def _row(result: Result, user_id: int) -> dict[str, Any]:
    """The exchanges row of a Result. The samples go in their own column, once; the earlier turns a
    request carried live in their own exchanges (found through `parent_id`), so forgetting or
    retention removes every copy."""
    req, energy, carbon = result.request, result.energy, result.carbon
    phases = energy.phases
    stored = result.model_dump(mode="json", exclude={"energy": {"machine": {"trace"}}, "request": {"turns"}})
    return dict(
        request_id=req.id,
        user_id=user_id,
        platform=req.platform,
        model=result.model,
        category=result.category,
        prompt=req.prompt,
        answer=result.answer,
        prompt_tokens=result.prompt_tokens,
        completion_tokens=result.completion_tokens,
        started_at=result.started_at,
        seconds=energy.seconds,
        load_s=result.load_s,
        energy_total_j=energy.total_j,
        energy_attributable_j=energy.attributable_j,
        idle_w=energy.idle.watts if energy.idle else None,
        energy_source=energy.machine.source,
        energy_measured=energy.measured,
        energy_uncertainty_j=energy.uncertainty_j,
        energy_attributable_uncertainty_j=energy.attributable_uncertainty_j,
        energy_scope=energy.machine.scope,
        energy_includes_reload=energy.includes_reload,
        prefill_j=phases.prefill_j if phases else None,
        prefill_uncertainty_j=phases.prefill_uncertainty_j if phases else None,
        decode_j=phases.decode_j if phases else None,
        decode_uncertainty_j=phases.decode_uncertainty_j if phases else None,
        intensity_g_per_kwh=carbon.intensity.g_per_kwh,
        intensity_zone=carbon.intensity.zone,
        intensity_provenance=carbon.intensity.provenance,
        operational_g=carbon.operational_g,
        embodied_g=carbon.embodied_g,
        sci_g=carbon.sci_g,
        box=result.box,
        result=stored,
        power_trace=[list(point) for point in energy.machine.trace] or None,
        share_token=result.share_token,
        meter_failures=sum(r.joules is None for r in (energy.machine, *energy.components)),
        conversation_id=req.conversation_id,
        parent_id=req.parent_id,
        turn=req.turn,
        context_turns=result.context_turns,
        chat_id=req.chat_id,
        message_ref=req.message_ref,
        system_prompt=req.system,
        sampling=(req.sampling.model_dump(exclude_defaults=True) or None) if req.sampling else None,
        images=[image.model_dump(exclude={"data"}) for image in req.images] or None,
        image_count=result.image_count,
        generation_settings=result.generation_settings,
        created_at=now(),
    )


class Exchanges(Users, GreenerHint):
    """Exchanges and the conversations they make (a part of HistoryStore)."""

    _answered: set[tuple[str, str]]  # (platform, platform user id) known to have answers (is_first_answer)

    def record(self, result: Result) -> int:
        """Store one finished exchange; returns its id. The Result's own id fields stay unset.

        The earlier turns a request carried are not stored again with it: each lives in its own
        exchange (found through `parent_id`), so forgetting or retention removes every copy.
        """
        req = result.request
        # One Core transaction: on the answer's path, an ORM session, the SQLModel object and its unit
        # of work (flush, then reloading the row for its id) cost more CPU than the write itself.
        with self.engine.begin() as connection:
            user_id = self._user_id(connection, req.platform, req.user_id)
            added = connection.execute(insert(EXCHANGES).returning(EXCHANGES.c.id), _row(result, user_id))
            exchange_id: int = added.scalar_one()
            if req.message_ref is not None and req.chat_id is not None:  # replies to it continue from here
                shown = {"platform": req.platform, "chat_id": req.chat_id, "message_ref": req.message_ref}
                connection.execute(insert(MESSAGES), {**shown, "exchange_id": exchange_id})
            rollup.add_one(connection, exchange_id)  # the statistics' sums
        self._user_ids[(req.platform, req.user_id)] = user_id  # committed: known from now on
        self._hint_counts(result)
        return exchange_id

    def is_first_answer(self, exchange_id: int, platform: str, platform_user_id: str) -> bool:
        """Whether the exchange is its user's first in history: none of theirs is older. One probe of the
        user_id index, once per user and store: a user this store has asked about before has answers."""
        who = (platform, platform_user_id)
        if who in self._answered:
            return False
        user = select(EXCHANGES.c.user_id).where(EXCHANGES.c.id == exchange_id).scalar_subquery()
        earlier = select(EXCHANGES.c.id).where(EXCHANGES.c.user_id == user, EXCHANGES.c.id < exchange_id).limit(1)
        with self.engine.connect() as connection:
            first = connection.execute(earlier).first() is None
        self._answered.add(who)
        return first

    def recent(self, platform: str, platform_user_id: str, limit: int = 10, offset: int = 0) -> list[Exchange]:
        """A user's own exchanges, newest first, one page of `limit` after skipping `offset`."""
        with self.engine.connect() as connection:
            return as_exchanges(connection, of_user(platform, platform_user_id).offset(offset).limit(limit))

    def get(self, exchange_id: int) -> Exchange | None:
        with self.engine.connect() as connection:
            return _one(connection, exchange_id)

    def answer_at(self, platform: str, chat_id: str, message_ref: str) -> Exchange | None:
        """The exchange whose answer (or a piece of it) a platform message of this chat shows: replies
        continue from it."""
        query = (
            select(EXCHANGES)
            .join(MESSAGES, MESSAGES.c.exchange_id == EXCHANGES.c.id)
            .where(
                MESSAGES.c.platform == platform,
                MESSAGES.c.chat_id == chat_id,
                MESSAGES.c.message_ref == message_ref,
                EXCHANGES.c.chat_id == chat_id,  # a forgotten exchange has no chat any more
            )
            .order_by(EXCHANGES.c.id.desc())
            .limit(1)
        )
        with self.engine.connect() as connection:
            found = as_exchanges(connection, query)
        return found[0] if found else None

    def add_messages(self, platform: str, chat_id: str, exchange_id: int, message_refs: list[str]) -> None:
        """More platform messages that show this exchange's answer (the pieces of a long one); idempotent."""
        shown = (MESSAGES.c.exchange_id == exchange_id, MESSAGES.c.chat_id == chat_id)
        with self.engine.begin() as connection:
            known = set(connection.execute(select(MESSAGES.c.message_ref).where(*shown)).scalars())
            new = [
                {"platform": platform, "chat_id": chat_id, "message_ref": ref, "exchange_id": exchange_id}
                for ref in dict.fromkeys(message_refs)  # in order, once each
                if ref not in known
            ]
            if new:
                connection.execute(insert(MESSAGES), new)

    def thread(self, exchange_id: int, max_turns: int = MAX_TURNS) -> list[Exchange]:
        """An exchange and the ones it continued, oldest first; stops where words were forgotten."""
        with self.engine.connect() as connection:
            return thread_of(connection, exchange_id, max_turns)

    def request_ids(self, prefix: str) -> set[str]:
        """The request ids starting with `prefix` (a benchmark run's: what it measured already)."""
        where = starting_with(self.engine.dialect.name, EXCHANGES.c.request_id, prefix)
        with self.engine.connect() as connection:
            return set(connection.execute(select(EXCHANGES.c.request_id).where(where)).scalars())


def thread_of(connection: Connection, exchange_id: int, max_turns: int = MAX_TURNS) -> list[Exchange]:
    """An exchange and the ones it continued, oldest first; stops where words were forgotten."""
    chain: list[Exchange] = []
    current = _one(connection, exchange_id)
    while current is not None and current.prompt and len(chain) < max_turns:
        chain.append(current)
        current = _one(connection, current.parent_id) if current.parent_id is not None else None
    return chain[::-1]


def _one(connection: Connection, exchange_id: int) -> Exchange | None:
    found = as_exchanges(connection, select(EXCHANGES).where(EXCHANGES.c.id == exchange_id))
    return found[0] if found else None
