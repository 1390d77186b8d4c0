"""energy uncertainty, energy scope, reload flag

Revision ID: 0014
Revises: 0018 (re-chained after the scores, web and perf branches; it only adds columns)

Every figure carries its ± band (about 95 %), total and above idle. The scope
(machine / components) and whether the answer's window included a model reload
are kept as columns so that statistics never mix what is not comparable.
Rows from before this revision keep NULL bands and are shown without one.
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0016"
branch_labels = None
depends_on = None


# Spelled out, not imported from the tables: a migration must not change when the models do.
STATS_BEFORE = [
    "category",
    "box",
    "energy_source",
    "model",
    "energy_total_j",
    "energy_attributable_j",
    "operational_g",
    "sci_g",
    "completion_tokens",
    "correct",
]
# the statistics also group by measured-vs-estimated, leave reloads out and average the bands
STATS_AFTER = [
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
    op.drop_index("ix_exchanges_stats", table_name="exchanges")
    with op.batch_alter_table("exchanges", schema=None) as batch_op:
        batch_op.add_column(sa.Column("energy_uncertainty_j", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("energy_attributable_uncertainty_j", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("energy_scope", sa.String(length=16), nullable=True))
        batch_op.add_column(
            sa.Column("energy_includes_reload", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    op.create_index("ix_exchanges_stats", "exchanges", STATS_AFTER, unique=False)


def downgrade() -> None:
    op.drop_index("ix_exchanges_stats", table_name="exchanges")
    with op.batch_alter_table("exchanges", schema=None) as batch_op:
        batch_op.drop_column("energy_includes_reload")
        batch_op.drop_column("energy_scope")
        batch_op.drop_column("energy_attributable_uncertainty_j")
        batch_op.drop_column("energy_uncertainty_j")
    op.create_index("ix_exchanges_stats", "exchanges", STATS_BEFORE, unique=False)
