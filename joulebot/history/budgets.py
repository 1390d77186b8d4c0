"""The energy a user's answers (or a whole platform's) drew since a moment: what the daily energy
budgets count. One query per question asked, through an index that starts with the user (or the
platform) and the answer's start, so its cost grows with the day's answers, never with history.

The figure summed is the bill's main one, the answer's total energy (`energy_total_j`): measured
where a meter measured it, else the labelled estimate (kept apart, so a refusal can say how much was
estimated). Answers without an energy figure (every meter failed) are counted, not summed. A user's
answers forgotten on the day still count: forgetting unlinks them, so the forget keeps their energy
on the user's row (`carry_forgotten`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import datetime
from typing import Any, NamedTuple, TypeVar

from sqlalchemy import Connection, Engine, String, bindparam, case, func, select, update
from sqlalchemy.exc import DBAPIError

from joulebot.history.engine import HistoryUnavailable
from joulebot.history.tables import Exchange
from joulebot.history.users import USERS

X = Exchange.__table__.c  # type: ignore[attr-defined]
PARTIAL_SCOPES = ("cpu", "gpu", "components")  # a measurement of some parts of the machine, not all of it
FORGOTTEN = ("forgotten_j", "forgotten_estimated_j", "forgotten_partial_j")  # users' columns, as EnergyUsed's
T = TypeVar("T")


class EnergyUsed(NamedTuple):
    """What a user's (or a platform's) answers drew since a moment."""

    joules: float  # total energy, measured and estimated together
    estimated_j: float  # the part of `joules` that is an estimate, not a measurement
    answers: int  # the answers counted, with or without an energy figure
    without_figure: int  # answers whose energy is unknown (every meter failed): not in `joules`
    partial_j: float = 0.0  # the part measured by component meters only (RAPL, NVML): not the whole machine

    @property
    def wh(self) -> float:
        return self.joules / 3600.0


NOTHING = EnergyUsed(0.0, 0.0, 0, 0)


def _sums() -> list[Any]:
    """Total energy, the estimated part of it, answers, answers without a figure, the part component
    meters measured: an EnergyUsed's columns."""
    estimated = case((X.energy_measured.is_(False), X.energy_total_j), else_=0.0)
    partial = X.energy_measured.is_(True) & X.energy_scope.in_(PARTIAL_SCOPES)
    return [
        func.coalesce(func.sum(X.energy_total_j), 0.0),
        func.coalesce(func.sum(estimated), 0.0),
        func.count(),
        func.count() - func.count(X.energy_total_j),
        func.coalesce(func.sum(case((partial, X.energy_total_j), else_=0.0)), 0.0),
    ]


def _used(row: Any) -> EnergyUsed:
    joules, estimated_j, answers, without, partial_j = row
    return EnergyUsed(float(joules), float(estimated_j), int(answers), int(without), float(partial_j))


@functools.cache
def _energy_query(of_user: bool) -> Any:
    """`energy_used`'s statement, built once (it runs for every question asked while a budget is set):
    building and hashing a statement costs more than SQLite takes to run it."""
    since, platform = bindparam("since", type_=X.started_at.type), bindparam("platform", type_=String)
    if not of_user:
        return select(*_sums()).where(X.started_at >= since, X.platform == platform)  # ix_exchanges_platform_started
    who = (USERS.c.platform == platform, USERS.c.platform_user_id == bindparam("user", type_=String))
    that_day = USERS.c.forgotten_since >= since
    forgotten = [  # their answers forgotten since `since` (0 when none: a sum over no row)
        select(func.coalesce(func.sum(USERS.c[name]), 0.0)).where(*who, that_day).scalar_subquery()
        for name in FORGOTTEN
    ]
    user = select(USERS.c.id).where(*who).scalar_subquery()
    return select(*_sums(), *forgotten).where(X.started_at >= since, X.user_id == user)  # ix_exchanges_user_started


def energy_used(
    connection: Connection, since: datetime, platform: str, platform_user_id: str | None = None
) -> EnergyUsed:
    """The energy of the answers that started at or after `since` (an aware UTC time), of one user
    (platform, platform user id) with their answers forgotten since then, or of every user of
    `platform` when `platform_user_id` is None (a forgotten answer still counts for its platform)."""
    values = {"since": since, "platform": platform, "user": platform_user_id}
    joules, estimated_j, answers, without, partial_j, *forgotten = connection.execute(
        _energy_query(platform_user_id is not None), values
    ).one()
    forgotten_j, forgotten_estimated_j, forgotten_partial_j = forgotten or (0.0, 0.0, 0.0)
    return EnergyUsed(
        float(joules) + float(forgotten_j),
        float(estimated_j) + float(forgotten_estimated_j),
        int(answers),
        int(without),
        float(partial_j) + float(forgotten_partial_j),
    )


def carry_forgotten(
    connection: Connection, since: datetime, user_id: int, platform: str, platform_user_id: str
) -> None:
    """Before a user's answers are forgotten (unlinked): keep the energy of those since `since` (the
    day's start) on their row, with what earlier forgets of the same day kept, so that it still counts."""
    used = energy_used(connection, since, platform, platform_user_id)
    parts = dict(zip(FORGOTTEN, (used.joules, used.estimated_j, used.partial_j), strict=True))
    kept = {"forgotten_since": since, **parts}
    connection.execute(update(USERS).where(USERS.c.id == user_id).values(kept))


def heaviest_users(connection: Connection, since: datetime, limit: int) -> list[tuple[str, str, EnergyUsed]]:
    """(platform, platform user id, energy used) of the `limit` users whose answers since `since` drew the
    most, most first (an operator's view: the day's rows through ix_exchanges_started_at)."""
    sums = _sums()
    query = (
        select(USERS.c.platform, USERS.c.platform_user_id, *sums)
        .join(USERS, X.user_id == USERS.c.id)
        .where(X.started_at >= since)
        .group_by(USERS.c.platform, USERS.c.platform_user_id)
        .order_by(sums[0].desc(), USERS.c.platform, USERS.c.platform_user_id)
        .limit(limit)
    )
    return [(platform, user, _used(rest)) for platform, user, *rest in connection.execute(query)]


class Budgets:
    """The daily energy budgets' query (a part of HistoryStore)."""

    engine: Engine

    def energy_used(self, since: datetime, platform: str, platform_user_id: str | None = None) -> EnergyUsed:
        """See `energy_used`: one user's answers since `since`, or a whole platform's without a user.
        HistoryUnavailable (one line, the driver's kind of error) when the database does not answer."""
        return self._budget_read(lambda connection: energy_used(connection, since, platform, platform_user_id))

    def heaviest_users(self, since: datetime, limit: int = 20) -> list[tuple[str, str, EnergyUsed]]:
        """See `heaviest_users`."""
        return self._budget_read(lambda connection: heaviest_users(connection, since, limit))

    def _budget_read(self, reading: Callable[[Connection], T]) -> T:
        try:
            with self.engine.connect() as connection:
                return reading(connection)
        except DBAPIError as exc:
            kind = type(exc.orig).__name__ if exc.orig is not None else type(exc).__name__
            raise HistoryUnavailable(f"the history database did not answer ({kind})") from None
