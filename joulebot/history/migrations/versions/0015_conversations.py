"""conversations, system prompts and the platform message of each answer

Revision ID: 0015
Revises: 0014
"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

# ix_exchanges_stats (0018) with `turn` first: the statistics count first questions only and stay
# index-only scans. Spelled out, not imported from the tables.
STATS = [
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
]  # 0014's columns


def upgrade() -> None:
    with op.batch_alter_table("exchanges", schema=None) as batch_op:
        batch_op.add_column(sa.Column("conversation_id", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("parent_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("turn", sa.Integer(), nullable=False, server_default="1"))
        batch_op.add_column(sa.Column("context_turns", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("chat_id", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("message_ref", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("system_prompt", sa.Text(), nullable=True))
        batch_op.create_index(batch_op.f("ix_exchanges_conversation_id"), ["conversation_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_exchanges_parent_id"), ["parent_id"], unique=False)
        batch_op.create_index("ix_exchanges_message", ["platform", "chat_id", "message_ref"], unique=False)
    op.drop_index("ix_exchanges_stats", table_name="exchanges")
    op.create_index("ix_exchanges_stats", "exchanges", ["turn", *STATS], unique=False)
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("system_prompt", sa.Text(), nullable=True))
    op.create_table(
        "chat_preferences",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("platform", sa.String(length=32), nullable=False),
        sa.Column("chat_id", sa.String(length=64), nullable=False),
        sa.Column("system_prompt", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("platform", "chat_id"),
    )


def downgrade() -> None:
    op.drop_table("chat_preferences")
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("system_prompt")
    op.drop_index("ix_exchanges_stats", table_name="exchanges")
    op.create_index("ix_exchanges_stats", "exchanges", STATS, unique=False)
    with op.batch_alter_table("exchanges", schema=None) as batch_op:
        batch_op.drop_index("ix_exchanges_message")
        batch_op.drop_index(batch_op.f("ix_exchanges_parent_id"))
        batch_op.drop_index(batch_op.f("ix_exchanges_conversation_id"))
        for column in (
            "system_prompt",
            "message_ref",
            "chat_id",
            "context_turns",
            "turn",
            "parent_id",
            "conversation_id",
        ):
            batch_op.drop_column(column)
