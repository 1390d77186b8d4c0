"""exchanges.generation_settings: the sampling settings each answer was made with, a key of stats_rollup

A model answers differently (and at another energy) with other sampling settings, so the statistics
keep the answers of each set of settings apart: the rollup gains the settings as a key, and is
filled again from the exchanges. Answers stored before have '' (not recorded: the runner's
defaults of their time, without the repetition stop).

Revision ID: 0026
Revises: 0025
"""

import sqlalchemy as sa
from alembic import op

from joulebot.history.rollup import DEFAULT_SAMPLING, TEXT_ONLY, backfill

revision = "0026"
down_revision = "0025"
branch_labels = None
depends_on = None

# Spelled out, not imported from the tables: a migration must not change when the models do.
KEYS = ["model", "category", "box", "energy_source", "energy_measured", "energy_includes_reload", "turn_kind"]
SETTINGS = "generation_settings"


def upgrade() -> None:
    op.add_column("exchanges", sa.Column(SETTINGS, sa.String(length=128), nullable=False, server_default=""))
    _rollup_keyed_by([*KEYS, SETTINGS])


def downgrade() -> None:
    _rollup_keyed_by(KEYS)
    with op.batch_alter_table("exchanges", schema=None) as batch_op:
        batch_op.drop_column(SETTINGS)


def _rollup_keyed_by(keys: list[str]) -> None:
    """stats_rollup made again with these keys (a primary key changes only so, on SQLite), with the
    figures it has, and filled from the exchanges the statistics count (not those asked with their own
    sampling or with images: 0023, 0024)."""
    bind = op.get_bind()
    old = sa.Table("stats_rollup", sa.MetaData(), autoload_with=bind)
    figures = [c for c in old.columns if c.name not in [*KEYS, SETTINGS]]
    op.drop_table("stats_rollup")
    op.create_table(
        "stats_rollup",
        *(
            sa.Column(c.name, old.c[c.name].type, nullable=False, autoincrement=False)
            for c in old.columns
            if c.name in KEYS
        ),
        *([sa.Column(SETTINGS, sa.String(length=128), nullable=False)] if SETTINGS in keys else []),
        *(sa.Column(c.name, c.type, nullable=False, server_default="0") for c in figures),
        sa.PrimaryKeyConstraint(*keys),
    )
    backfill(bind, [c.name for c in figures], sa.and_(DEFAULT_SAMPLING, TEXT_ONLY), keys)
