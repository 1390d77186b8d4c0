"""exchange_messages: every platform message that shows an answer (a long one spans several)

A reply to any piece of a long answer continues its conversation, so each message id is
stored, not only the first. The rows of existing answers (exchanges.message_ref) are copied;
replies are looked up in the new table, so exchanges' message index goes.

Revision ID: 0020
Revises: 0015
"""

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "exchange_messages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("platform", sa.String(length=32), nullable=False),
        sa.Column("chat_id", sa.String(length=64), nullable=False),
        sa.Column("message_ref", sa.String(length=64), nullable=False),
        sa.Column("exchange_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["exchange_id"], ["exchanges.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_exchange_messages_message", "exchange_messages", ["platform", "chat_id", "message_ref"], unique=False
    )
    op.create_index("ix_exchange_messages_exchange_id", "exchange_messages", ["exchange_id"], unique=False)
    # answers shown before: their one message (forgotten or expired ones have no chat any more)
    op.execute(
        "INSERT INTO exchange_messages (platform, chat_id, message_ref, exchange_id) "
        "SELECT platform, chat_id, message_ref, id FROM exchanges "
        "WHERE message_ref IS NOT NULL AND chat_id IS NOT NULL AND prompt <> ''"
    )
    with op.batch_alter_table("exchanges", schema=None) as batch_op:
        batch_op.drop_index("ix_exchanges_message")


def downgrade() -> None:
    with op.batch_alter_table("exchanges", schema=None) as batch_op:
        batch_op.create_index("ix_exchanges_message", ["platform", "chat_id", "message_ref"], unique=False)
    op.drop_index("ix_exchange_messages_exchange_id", table_name="exchange_messages")
    op.drop_index("ix_exchange_messages_message", table_name="exchange_messages")
    op.drop_table("exchange_messages")
