"""power trace, share token and meter failures per exchange (the dashboard)

Revision ID: 0017
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("exchanges", schema=None) as batch_op:
        batch_op.add_column(sa.Column("power_trace", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("share_token", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("meter_failures", sa.Integer(), nullable=False, server_default="0"))
        batch_op.create_unique_constraint("uq_exchanges_share_token", ["share_token"])


def downgrade() -> None:
    with op.batch_alter_table("exchanges", schema=None) as batch_op:
        batch_op.drop_constraint("uq_exchanges_share_token", type_="unique")
        batch_op.drop_column("meter_failures")
        batch_op.drop_column("share_token")
        batch_op.drop_column("power_trace")
