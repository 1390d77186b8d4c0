"""a covering index for the statistics (category, box, meter, model and the figures they average)

Revision ID: 0018
Revises: 0017
"""

from alembic import op

revision = "0018"
down_revision = "0017"  # the head when written; it covers 0019's `correct`
branch_labels = None
depends_on = None

# Spelled out, not imported from the tables: a migration must not change when the models do.
COLUMNS = [
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


def upgrade() -> None:
    op.create_index("ix_exchanges_stats", "exchanges", COLUMNS, unique=False)


def downgrade() -> None:
    op.drop_index("ix_exchanges_stats", table_name="exchanges")
