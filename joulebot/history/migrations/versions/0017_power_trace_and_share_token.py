"""power trace, share token and meter failures per exchange (the dashboard)

Revision ID: 0017
Revises: 0019
"""

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0019"
branch_labels = None
depends_on = None

TABLE_INDEX_COLUMNS = [
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


def upgrade() -> None:
    with op.batch_alter_table("exchanges", schema=None) as batch_op:
        batch_op.add_column(sa.Column("power_trace", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("share_token", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("meter_failures", sa.Integer(), nullable=False, server_default="0"))
        batch_op.create_unique_constraint("uq_exchanges_share_token", ["share_token"])
        # covering index of the dashboard's table: its aggregates read the index, never the wide rows
        batch_op.create_index("ix_exchanges_table", TABLE_INDEX_COLUMNS, unique=False)
        batch_op.create_index("ix_exchanges_started_at", ["started_at"], unique=False)  # answers in the last hour


def downgrade() -> None:
    with op.batch_alter_table("exchanges", schema=None) as batch_op:
        batch_op.drop_index("ix_exchanges_started_at")
        batch_op.drop_index("ix_exchanges_table")
        batch_op.drop_constraint("uq_exchanges_share_token", type_="unique")
        batch_op.drop_column("meter_failures")
        batch_op.drop_column("share_token")
        batch_op.drop_column("power_trace")
