"""users and exchanges

Revision ID: 0001
Revises: (none)
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("platform", sa.String(length=32), nullable=False),
        sa.Column("platform_user_id", sa.String(length=64), nullable=False),
        sa.Column("default_model", sa.String(length=128), nullable=True),
        sa.Column("units", sa.String(length=16), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("platform", "platform_user_id"),
    )
    op.create_table(
        "exchanges",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("platform", sa.String(length=32), nullable=False),
        sa.Column("model", sa.String(length=128), nullable=False),
        sa.Column("category", sa.String(length=32), nullable=False),
        sa.Column("prompt", sa.Text(), nullable=False),
        sa.Column("answer", sa.Text(), nullable=False),
        sa.Column("prompt_tokens", sa.Integer(), nullable=False),
        sa.Column("completion_tokens", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("seconds", sa.Float(), nullable=False),
        sa.Column("load_s", sa.Float(), nullable=False),
        sa.Column("energy_total_j", sa.Float(), nullable=True),
        sa.Column("energy_attributable_j", sa.Float(), nullable=True),
        sa.Column("idle_w", sa.Float(), nullable=True),
        sa.Column("energy_source", sa.String(length=32), nullable=False),
        sa.Column("energy_measured", sa.Boolean(), nullable=False),
        sa.Column("intensity_g_per_kwh", sa.Float(), nullable=False),
        sa.Column("intensity_zone", sa.String(length=32), nullable=False),
        sa.Column("intensity_provenance", sa.String(length=16), nullable=False),
        sa.Column("operational_g", sa.Float(), nullable=True),
        sa.Column("embodied_g", sa.Float(), nullable=False),
        sa.Column("sci_g", sa.Float(), nullable=True),
        sa.Column("box", sa.String(length=128), nullable=False),
        sa.Column("result", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("request_id"),
    )
    with op.batch_alter_table("exchanges", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_exchanges_category"), ["category"], unique=False)
        batch_op.create_index(batch_op.f("ix_exchanges_model"), ["model"], unique=False)
        batch_op.create_index(batch_op.f("ix_exchanges_user_id"), ["user_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("exchanges", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_exchanges_user_id"))
        batch_op.drop_index(batch_op.f("ix_exchanges_model"))
        batch_op.drop_index(batch_op.f("ix_exchanges_category"))

    op.drop_table("exchanges")
    op.drop_table("users")
