"""energy uncertainty, energy scope, reload flag

Revision ID: 0014
Revises: 0017 (re-chained after the scores and web branches; it only adds columns)

Every figure carries its ± band (about 95 %), total and above idle. The scope
(machine / components) and whether the answer's window included a model reload
are kept as columns so that statistics never mix what is not comparable.
Rows from before this revision keep NULL bands and are shown without one.
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("exchanges", schema=None) as batch_op:
        batch_op.add_column(sa.Column("energy_uncertainty_j", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("energy_attributable_uncertainty_j", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("energy_scope", sa.String(length=16), nullable=True))
        batch_op.add_column(
            sa.Column("energy_includes_reload", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table("exchanges", schema=None) as batch_op:
        batch_op.drop_column("energy_includes_reload")
        batch_op.drop_column("energy_scope")
        batch_op.drop_column("energy_attributable_uncertainty_j")
        batch_op.drop_column("energy_uncertainty_j")
