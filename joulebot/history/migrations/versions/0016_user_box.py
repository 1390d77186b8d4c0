"""users.box: the box a user pinned (/box NAME), empty: routing decides; an index on exchanges.box (per-box stats)

Revision ID: 0016
Revises: 0018 (re-chained after main's 0019, 0017 and 0018)
"""

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("box", sa.String(length=128), nullable=True))
    op.create_index("ix_exchanges_box", "exchanges", ["box"])


def downgrade() -> None:
    op.drop_index("ix_exchanges_box", table_name="exchanges")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("box")
