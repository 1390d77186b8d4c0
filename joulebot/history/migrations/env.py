"""Alembic environment: migrations run on the connection HistoryStore hands over."""

from alembic import context
from sqlalchemy import text
from sqlmodel import SQLModel

from joulebot.history import tables  # noqa: F401  (registers the tables on SQLModel.metadata)

connection = context.config.attributes["connection"]
if connection.dialect.name == "postgresql":
    # two processes starting at once (worker and bot) must not both create the tables
    connection.execute(text("SELECT pg_advisory_xact_lock(2102102)"))
context.configure(connection=connection, target_metadata=SQLModel.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
