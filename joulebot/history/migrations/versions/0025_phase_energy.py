"""prefill and decode energy per exchange, and the statistics' J per prompt token and per output token

Each answer's total is split where the first token came (metering/phases.py): reading the prompt
and the context (prefill), then generating (decode), each with its band. The rollup gains the
sums of J per prompt token and J per output token. Answers stored before were never split: their
columns are NULL, and the new sums start at 0 without a backfill.

Revision ID: 0025
Revises: 0024
"""

import sqlalchemy as sa
from alembic import op

revision = "0025"
down_revision = "0024"
branch_labels = None
depends_on = None

# Spelled out, not imported from the tables: a migration must not change when the models do.
COLUMNS = ["prefill_j", "prefill_uncertainty_j", "decode_j", "decode_uncertainty_j"]
FLOATS = ["j_per_prompt_token", "j_per_prompt_token_squares", "j_per_output_token", "j_per_output_token_squares"]
COUNTS = ["prefill_n", "decode_n"]


def upgrade() -> None:
    with op.batch_alter_table("exchanges", schema=None) as batch_op:
        for name in COLUMNS:
            batch_op.add_column(sa.Column(name, sa.Float(), nullable=True))
    for name in FLOATS:
        op.add_column("stats_rollup", sa.Column(name, sa.Float(), nullable=False, server_default="0"))
    for name in COUNTS:
        op.add_column("stats_rollup", sa.Column(name, sa.BigInteger(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("stats_rollup", schema=None) as batch_op:
        for name in [*FLOATS, *COUNTS]:
            batch_op.drop_column(name)
    with op.batch_alter_table("exchanges", schema=None) as batch_op:
        for name in COLUMNS:
            batch_op.drop_column(name)
