"""stats_rollup: the statistics' running sums, kept with every write, backfilled from the exchanges

Every statistic reads a few hundred rows of sums instead of every exchange (joulebot/history/rollup.py).
The covering index `ix_exchanges_stats` (0018, 0015) served the aggregates over the rows and
is no longer read: it goes, which makes each insert cheaper. On PostgreSQL, one benchmark run's
rows (request ids starting with its prefix) get a pattern index, which LIKE uses whatever the
database's collation (SQLite uses a range on the unique index).

Revision ID: 0021
Revises: 0020
"""

import sqlalchemy as sa
from alembic import op

from joulebot.history.rollup import backfill

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None

# Spelled out, not imported from the tables: a migration must not change when the models do. The
# backfill takes these figures' definitions from rollup.FIGURES (one definition of each sum); a
# later revision that changes a definition fills the table again.
# the rollup's keys as this revision made them (a later one adds more)
KEYS = ["model", "category", "box", "energy_source", "energy_measured", "energy_includes_reload", "turn_kind"]
FIGURES = [
    "answers",
    "total_j",
    "total_j_squares",
    "attributable_n",
    "attributable_j",
    "operational_n",
    "operational_g",
    "sci_n",
    "sci_g",
    "sci_g_squares",
    "completion_tokens",
    "band_j",
    "seconds",
    "scored",
    "correct",
    "scored_total_j",
    "scored_sci_n",
    "scored_sci_g",
]
COUNTS = ["answers", "attributable_n", "operational_n", "sci_n", "completion_tokens", "scored", "correct"]
COUNTS += ["scored_sci_n"]  # the integers; the other figures are floats
STATS = [  # ix_exchanges_stats as 0015 left it
    "turn",
    "category",
    "box",
    "energy_source",
    "model",
    "energy_measured",
    "energy_includes_reload",
    "energy_total_j",
    "energy_attributable_j",
    "operational_g",
    "sci_g",
    "completion_tokens",
    "correct",
    "energy_uncertainty_j",
]


def upgrade() -> None:
    op.create_table(
        "stats_rollup",
        sa.Column("model", sa.String(length=128), nullable=False),
        sa.Column("category", sa.String(length=32), nullable=False),
        sa.Column("box", sa.String(length=128), nullable=False),
        sa.Column("energy_source", sa.String(length=32), nullable=False),
        sa.Column("energy_measured", sa.Boolean(), nullable=False),
        sa.Column("energy_includes_reload", sa.Boolean(), nullable=False),
        sa.Column("turn_kind", sa.SmallInteger(), nullable=False, autoincrement=False),
        *(
            sa.Column(name, sa.BigInteger() if name in COUNTS else sa.Float(), nullable=False, server_default="0")
            for name in FIGURES
        ),
        sa.PrimaryKeyConstraint(*KEYS),
    )
    backfill(op.get_bind(), FIGURES, keys=KEYS)
    op.drop_index("ix_exchanges_stats", table_name="exchanges")
    if op.get_bind().dialect.name == "postgresql":
        op.create_index(
            "ix_exchanges_request_id_pattern",
            "exchanges",
            ["request_id"],
            postgresql_ops={"request_id": "varchar_pattern_ops"},
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.drop_index("ix_exchanges_request_id_pattern", table_name="exchanges")
    op.create_index("ix_exchanges_stats", "exchanges", STATS, unique=False)
    op.drop_table("stats_rollup")
