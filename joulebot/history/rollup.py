"""The statistics' running sums: one row per model, task, box, meter and kind of answer (`stats_rollup`).

Every statistic (`joulebot stats`, `/stats`, the greener-model hint, routing's box means) is a
mean, a count or a standard deviation from a sum of squares, so it can be computed from sums
kept per group. The sums of an answer are added in the same transaction that stores it, by one
atomic upsert (`INSERT ... SELECT ... ON CONFLICT DO UPDATE SET n = n + excluded.n`, SQLite and
PostgreSQL alike), so several workers writing one database lose no update; a score changes them
the same way (its old figures out, its new ones in). A query then reads a few hundred rows
instead of every exchange: flat as history grows.

`FIGURES` is the one definition of each sum. The same expressions aggregate the exchanges
directly (`direct`): for one answer at insert, for the migration's backfill (`backfill`), for one
benchmark run's statistics (a small, indexed subset of the rows) and in the tests that check the
rollup against the rows.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.sql import ColumnElement, FromClause, Select
from sqlmodel import SQLModel

# The exchanges' columns the sums read and a score writes (a light table, not the model: the
# migration's backfill reads the same columns).
EXCHANGES = sa.table(
    "exchanges",
    sa.column("id", sa.Integer),
    sa.column("request_id", sa.String),
    sa.column("model", sa.String),
    sa.column("category", sa.String),
    sa.column("box", sa.String),
    sa.column("energy_source", sa.String),
    sa.column("energy_measured", sa.Boolean),
    sa.column("energy_includes_reload", sa.Boolean),
    sa.column("turn", sa.Integer),
    sa.column("generation_settings", sa.String),
    sa.column("energy_total_j", sa.Float),
    sa.column("energy_attributable_j", sa.Float),
    sa.column("energy_uncertainty_j", sa.Float),
    sa.column("operational_g", sa.Float),
    sa.column("sci_g", sa.Float),
    sa.column("completion_tokens", sa.Integer),
    sa.column("prompt_tokens", sa.Integer),
    sa.column("prefill_j", sa.Float),
    sa.column("decode_j", sa.Float),
    sa.column("seconds", sa.Float),
    sa.column("meter_failures", sa.Integer),
    sa.column("correct", sa.Boolean),
    sa.column("score", sa.Float),  # not summed: set with `correct` (HistoryStore._rescore)
    sa.column("score_note", sa.String),
    sa.column("sampling", sa.JSON),
    sa.column("images", sa.JSON),
    sa.column("image_count", sa.Integer),
)
X = EXCHANGES.c

# turn_kind: first questions and the later turns of conversations are counted apart
FIRST, LATER, OTHER = 1, 2, 0  # OTHER: a turn below 1, which joulebot never writes

KEYS: dict[str, ColumnElement[Any]] = {
    "model": X.model,
    "category": X.category,
    "box": X.box,
    "energy_source": X.energy_source,
    "energy_measured": X.energy_measured,
    "energy_includes_reload": X.energy_includes_reload,  # a reload inside the window: not comparable
    "turn_kind": sa.case((X.turn == 1, FIRST), (X.turn > 1, LATER), else_=OTHER),
    "generation_settings": X.generation_settings,  # answers of other sampling settings are other answers
    # answers that read images (the question's own or earlier ones the conversation carried) against text-only
    # ones: reading an image is work a text-only answer never does, so the two are never averaged together
    "with_images": X.image_count > 0,
}

_scored = X.correct.is_not(None)
# Answers asked with their own sampling (temperature, top_p, stop, seed: the API's) cost what those
# settings make them cost: they are in no statistic. (Before migration 0023 there is no such column,
# and no such answer: the migrations' backfills read every exchange.)
DEFAULT_SAMPLING = X.sampling.is_(None)
# Before migration 0028 answers with images were in no statistic either (they have their own key since)
TEXT_ONLY = X.images.is_(None)


def _sum(value: ColumnElement[Any]) -> ColumnElement[Any]:
    return sa.func.coalesce(sa.func.sum(value), 0)  # 0 for no value: the counts beside say "none"


_tokens = X.completion_tokens > 0
_per_token = X.energy_total_j / X.completion_tokens  # a float: energy is REAL / double precision
# the answers split at the first token (Energy.phases): J per prompt token read, J per token generated
_prefilled = sa.and_(X.prefill_j.is_not(None), X.prompt_tokens > 0)
_per_prompt_token = X.prefill_j / X.prompt_tokens
_decoded = sa.and_(X.decode_j.is_not(None), _tokens)
_per_output_token = X.decode_j / X.completion_tokens

# The upper bounds (J) of the dashboard's histogram of energy per answer (`/metrics`): a count per bound
ENERGY_BUCKETS = (1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000)


def bucket(bound: float) -> str:
    """The rollup column counting the answers of at most `bound` J."""
    return "energy_le_" + f"{bound:g}".replace(".", "_")


def _at_most(bound: float) -> Callable[[], ColumnElement[Any]]:
    return lambda: sa.func.count(sa.case((X.energy_total_j <= bound, 1)))


# Every sum over the answers with a total energy (those without one are in no statistic).
FIGURES: dict[str, Callable[[], ColumnElement[Any]]] = {
    "answers": lambda: sa.func.count(),
    "total_j": lambda: _sum(X.energy_total_j),
    "total_j_squares": lambda: _sum(X.energy_total_j * X.energy_total_j),
    "attributable_n": lambda: sa.func.count(X.energy_attributable_j),
    "attributable_j": lambda: _sum(X.energy_attributable_j),
    "operational_n": lambda: sa.func.count(X.operational_g),
    "operational_g": lambda: _sum(X.operational_g),
    "sci_n": lambda: sa.func.count(X.sci_g),
    "sci_g": lambda: _sum(X.sci_g),
    "sci_g_squares": lambda: _sum(X.sci_g * X.sci_g),
    "completion_tokens": lambda: _sum(X.completion_tokens),
    "band_j": lambda: _sum(sa.func.coalesce(X.energy_uncertainty_j, 0.0)),  # rows from before bands: 0
    "seconds": lambda: _sum(X.seconds),
    # the benchmark's scores (unscored answers are neither right nor wrong)
    "scored": lambda: sa.func.count(X.correct),
    "correct": lambda: _sum(sa.case((X.correct.is_(True), 1), else_=0)),
    "scored_total_j": lambda: _sum(sa.case((_scored, X.energy_total_j))),
    "scored_sci_n": lambda: sa.func.count(sa.case((_scored, X.sci_g))),
    "scored_sci_g": lambda: _sum(sa.case((_scored, X.sci_g))),
    # the dashboard's table and /metrics
    "attributable_j_squares": lambda: _sum(X.energy_attributable_j * X.energy_attributable_j),
    "token_n": lambda: sa.func.count(sa.case((_tokens, 1))),  # answers with tokens: J per token
    "j_per_token": lambda: _sum(sa.case((_tokens, _per_token))),
    "j_per_token_squares": lambda: _sum(sa.case((_tokens, _per_token * _per_token))),
    "meter_failures": lambda: _sum(X.meter_failures),
    "prefill_n": lambda: sa.func.count(sa.case((_prefilled, 1))),
    "j_per_prompt_token": lambda: _sum(sa.case((_prefilled, _per_prompt_token))),
    "j_per_prompt_token_squares": lambda: _sum(sa.case((_prefilled, _per_prompt_token * _per_prompt_token))),
    "decode_n": lambda: sa.func.count(sa.case((_decoded, 1))),
    "j_per_output_token": lambda: _sum(sa.case((_decoded, _per_output_token))),
    "j_per_output_token_squares": lambda: _sum(sa.case((_decoded, _per_output_token * _per_output_token))),
    **{bucket(b): _at_most(b) for b in ENERGY_BUCKETS},
}
COUNTS = {  # integers; the other figures are floats
    "answers",
    "attributable_n",
    "operational_n",
    "sci_n",
    "completion_tokens",
    "scored",
    "correct",
    "scored_sci_n",
    "token_n",
    "meter_failures",
    "prefill_n",
    "decode_n",
    *(bucket(b) for b in ENERGY_BUCKETS),
}
SCORES = ("scored", "correct", "scored_total_j", "scored_sci_n", "scored_sci_g")  # what a score changes

STATS_ROLLUP = sa.Table(
    "stats_rollup",
    SQLModel.metadata,
    sa.Column("model", sa.String(128), primary_key=True),
    sa.Column("category", sa.String(32), primary_key=True),
    sa.Column("box", sa.String(128), primary_key=True),
    sa.Column("energy_source", sa.String(32), primary_key=True),
    sa.Column("energy_measured", sa.Boolean, primary_key=True),
    sa.Column("energy_includes_reload", sa.Boolean, primary_key=True),
    sa.Column("turn_kind", sa.SmallInteger, primary_key=True, autoincrement=False),
    sa.Column("generation_settings", sa.String(128), primary_key=True),
    sa.Column("with_images", sa.Boolean, primary_key=True),
    *(
        sa.Column(name, sa.BigInteger if name in COUNTS else sa.Float, nullable=False, server_default="0")
        for name in FIGURES
    ),
)
R = STATS_ROLLUP.c


def direct(
    where: ColumnElement[bool] | None = None,
    figures: Sequence[str] = tuple(FIGURES),
    sign: int = 1,
    keys: Sequence[str] = tuple(KEYS),
) -> Select:
    """The rollup's rows computed from the exchanges themselves (those matching `where`), `sign` × each sum."""
    return (
        sa.select(
            *(KEYS[name].label(name) for name in keys),
            *((FIGURES[f]() if sign > 0 else -FIGURES[f]()).label(f) for f in figures),
        )
        .where(X.energy_total_j.is_not(None), sa.true() if where is None else where)  # a WHERE: see `add`
        .group_by(*(KEYS[name] for name in keys))
    )


def upsert(dialect: str, where: ColumnElement[bool], figures: Sequence[str] = tuple(FIGURES), sign: int = 1) -> Any:
    """Add (`sign` -1: take away) the sums of the exchanges matching `where` to the rollup, atomically.

    One statement: concurrent writers each add their own figures (a row made meanwhile by another
    writer is updated, not inserted twice). The SELECT always has a WHERE, which SQLite's parser
    needs before ON CONFLICT.
    """
    insert = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(STATS_ROLLUP)
    statement = insert.from_select([*KEYS, *figures], direct(where, figures, sign))
    return statement.on_conflict_do_update(
        index_elements=list(KEYS), set_={f: R[f] + statement.excluded[f] for f in figures}
    )


def add(
    connection: Connection, where: ColumnElement[bool], figures: Sequence[str] = tuple(FIGURES), sign: int = 1
) -> None:
    """`upsert`, run."""
    connection.execute(upsert(connection.dialect.name, where, figures, sign))


_ADD_ONE: dict[str, Any] = {}


def add_one(connection: Connection, exchange_id: int) -> None:
    """Add one new exchange's sums (on every answer's path: its statement is built once per database
    kind and reused, so SQLAlchemy neither builds nor compiles it again)."""
    dialect = connection.dialect.name
    if dialect not in _ADD_ONE:
        _ADD_ONE[dialect] = upsert(dialect, sa.and_(X.id == sa.bindparam("exchange_id"), DEFAULT_SAMPLING))
    connection.execute(_ADD_ONE[dialect], {"exchange_id": exchange_id})


def backfill(
    connection: Connection,
    figures: Sequence[str] = tuple(FIGURES),
    where: ColumnElement[bool] | None = None,
    keys: Sequence[str] = tuple(KEYS),
) -> None:
    """Fill an empty rollup from the exchanges matching `where` (the migration; a bulk load that went
    around `record`): a migration names the figures and keys its table has."""
    table = sa.table("stats_rollup", *(sa.column(name) for name in [*keys, *figures]))
    connection.execute(sa.insert(table).from_select([*keys, *figures], direct(where, figures, keys=keys)))


def rebuild(connection: Connection) -> None:
    """Compute the whole rollup again from the exchanges (after rows were written around `record`)."""
    connection.execute(sa.delete(STATS_ROLLUP))
    backfill(connection, where=DEFAULT_SAMPLING)


def totals(group_by: Sequence[str], match: dict[str, Any], source: FromClause = STATS_ROLLUP) -> Select:
    """Every figure summed per `group_by` over the rows whose keys equal `match` (key names).

    `source` is the rollup table, or `direct(...).subquery()` for the same sums straight from the
    exchanges.
    """
    columns = source.c
    return (
        sa.select(*(columns[k] for k in group_by), *(sa.func.sum(columns[f]).label(f) for f in FIGURES))
        .where(*(columns[k] == value for k, value in match.items()))
        .group_by(*(columns[k] for k in group_by))
    )


def as_numbers(row: Any) -> dict[str, Any]:
    """A `totals` row as Python numbers (PostgreSQL sums integers as NUMERIC)."""
    values = dict(row._mapping)
    for name in FIGURES:
        values[name] = (int if name in COUNTS else float)(values[name] or 0)
    return values
