"""exchanges.images: what each image a question carried was (name, hash, byte size, dimensions), never
the image; NULL for a question without images. Answers with images cost what reading them costs: they
stayed out of the statistics' sums until revision 0028 gave them a key of their own there.
No row before this revision has images: the rollup needs no refill.

Revision ID: 0024
Revises: 0023
"""

import sqlalchemy as sa
from alembic import op

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("exchanges", schema=None) as batch_op:
        batch_op.add_column(sa.Column("images", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("exchanges", schema=None) as batch_op:
        batch_op.drop_column("images")
