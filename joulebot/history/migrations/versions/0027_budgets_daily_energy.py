"""The daily energy budgets: indexes for the day's answers of a user and of a platform, and the energy
of a user's forgotten answers

Every question asked while a budget is set sums the energy of the asker's answers since the day
began (and, on the web chat, of every visitor's): the indexes make that a range over the day's rows
instead of a walk through the user's whole history (or through every platform's day). Forgetting
unlinks a user's answers; the energy of the day's forgotten ones stays on their users row, so that a
forget does not reset their budget.

Revision ID: 0027
Revises: 0026
"""

import sqlalchemy as sa
from alembic import op

revision = "0027"
down_revision = "0026"
branch_labels = None
depends_on = None

FORGOTTEN = ("forgotten_j", "forgotten_estimated_j")


def upgrade() -> None:
    op.create_index("ix_exchanges_user_started", "exchanges", ["user_id", "started_at"])
    op.create_index("ix_exchanges_platform_started", "exchanges", ["platform", "started_at"])
    op.add_column("users", sa.Column("forgotten_since", sa.DateTime(timezone=True), nullable=True))
    for name in FORGOTTEN:
        op.add_column("users", sa.Column(name, sa.Float(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        for name in ("forgotten_since", *FORGOTTEN):
            batch_op.drop_column(name)
    op.drop_index("ix_exchanges_platform_started", table_name="exchanges")
    op.drop_index("ix_exchanges_user_started", table_name="exchanges")
