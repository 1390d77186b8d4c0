"""The energy of a user's forgotten answers that component meters measured (RAPL, NVML: not the whole
machine), kept apart as the estimated part is, so that a budget's line says which part of the day's
energy is a component meter's figure after a forget too.

Revision ID: 0029
Revises: 0028
"""

import sqlalchemy as sa
from alembic import op

revision = "0029"
down_revision = "0028"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("users", sa.Column("forgotten_partial_j", sa.Float(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("forgotten_partial_j")
