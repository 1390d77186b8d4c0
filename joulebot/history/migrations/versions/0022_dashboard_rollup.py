"""stats_rollup for the dashboard: its table and /metrics read sums, not every exchange

New sums per group: squares of the energy above idle, J per generated token (count, sum, squares
over the answers with tokens), meter failures, and the histogram of energy per answer (a count
per upper bound). The rollup is filled again from the exchanges. The dashboard's covering index
`ix_exchanges_table` (0017) is no longer read: it goes, which makes each insert cheaper. The
answers without a total energy (not in the rollup) are counted by /metrics through a small
partial index. The box index gains the id, so a box's latest answer is one probe.

Revision ID: 0022
Revises: 0021
"""

import sqlalchemy as sa
from alembic import op

from joulebot.history.rollup import backfill

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None

# Spelled out, not imported from the tables: a migration must not change when the models do.
# the rollup's keys as 0021 made them (a later one adds more)
KEYS = ["model", "category", "box", "energy_source", "energy_measured", "energy_includes_reload", "turn_kind"]
BEFORE = [  # 0021's figures
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
BUCKETS = ["1", "2_5", "5", "10", "25", "50", "100", "250", "500", "1000", "2500", "5000", "10000"]
NEW_FLOATS = ["attributable_j_squares", "j_per_token", "j_per_token_squares"]
NEW_COUNTS = ["token_n", "meter_failures", *(f"energy_le_{b}" for b in BUCKETS)]
TABLE_INDEX_COLUMNS = [  # ix_exchanges_table as 0017 made it
    "box",
    "energy_source",
    "energy_measured",
    "model",
    "category",
    "energy_total_j",
    "energy_attributable_j",
    "sci_g",
    "completion_tokens",
    "meter_failures",
]
NO_ENERGY = "energy_total_j IS NULL"


def upgrade() -> None:
    for name in NEW_FLOATS:
        op.add_column("stats_rollup", sa.Column(name, sa.Float(), nullable=False, server_default="0"))
    for name in NEW_COUNTS:
        op.add_column("stats_rollup", sa.Column(name, sa.BigInteger(), nullable=False, server_default="0"))
    op.execute("DELETE FROM stats_rollup")
    backfill(op.get_bind(), [*BEFORE, *NEW_FLOATS, *NEW_COUNTS], keys=KEYS)
    op.drop_index("ix_exchanges_table", table_name="exchanges")
    op.drop_index("ix_exchanges_box", table_name="exchanges")
    op.create_index("ix_exchanges_box_id", "exchanges", ["box", "id"])
    op.create_index(
        "ix_exchanges_no_energy",
        "exchanges",
        ["model", "box", "category", "energy_source", "energy_measured", "meter_failures"],
        sqlite_where=sa.text(NO_ENERGY),
        postgresql_where=sa.text(NO_ENERGY),
    )


def downgrade() -> None:
    op.drop_index("ix_exchanges_no_energy", table_name="exchanges")
    op.drop_index("ix_exchanges_box_id", table_name="exchanges")
    op.create_index("ix_exchanges_box", "exchanges", ["box"])
    op.create_index("ix_exchanges_table", "exchanges", TABLE_INDEX_COLUMNS, unique=False)
    with op.batch_alter_table("stats_rollup", schema=None) as batch_op:
        for name in [*NEW_FLOATS, *NEW_COUNTS]:
            batch_op.drop_column(name)
