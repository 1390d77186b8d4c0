"""Answers that read images as a statistics basis of their own: exchanges.image_count, a key of stats_rollup

Until now an answer to a question with images was in no statistic (0024). Each answer now says how
many images the model received (the question's own and those an earlier turn of its conversation
carried), and the rollup keeps the answers with images apart from the text-only ones (`with_images`):
they are counted, in their own rows, never averaged together. The rollup is made again with the new
key and filled from the exchanges; the rows stored before have the question's own images only.

Revision ID: 0028
Revises: 0027
"""

import sqlalchemy as sa
from alembic import op

from joulebot.history.rollup import DEFAULT_SAMPLING, TEXT_ONLY, backfill

revision = "0028"
down_revision = "0027"
branch_labels = None
depends_on = None

# Spelled out, not imported from the tables: a migration must not change when the models do.
BEFORE = [
    "model",
    "category",
    "box",
    "energy_source",
    "energy_measured",
    "energy_includes_reload",
    "turn_kind",
    "generation_settings",
]
IMAGES = "with_images"
EXCHANGES = sa.table("exchanges", sa.column("images", sa.JSON), sa.column("image_count", sa.Integer))


def upgrade() -> None:
    op.add_column("exchanges", sa.Column("image_count", sa.Integer(), nullable=False, server_default="0"))
    is_array = sa.func.json_typeof if op.get_bind().dialect.name == "postgresql" else sa.func.json_type
    x = EXCHANGES.c
    op.execute(
        EXCHANGES.update()
        .where(x.images.is_not(None), is_array(x.images) == "array")
        .values(image_count=sa.func.json_array_length(x.images))
    )
    _remake_rollup(with_images=True)


def downgrade() -> None:
    _remake_rollup(with_images=False)
    with op.batch_alter_table("exchanges", schema=None) as batch_op:
        batch_op.drop_column("image_count")


def _remake_rollup(with_images: bool) -> None:
    """stats_rollup dropped and created again (a primary key changes only so on SQLite), keyed by `BEFORE`
    and, going up, `with_images`; filled from the exchanges the statistics count at that revision."""
    bind = op.get_bind()
    old = sa.Table("stats_rollup", sa.MetaData(), autoload_with=bind)
    keys = [*BEFORE, *([IMAGES] if with_images else [])]
    figures = [column for column in old.columns if column.name not in [*BEFORE, IMAGES]]
    op.drop_table("stats_rollup")
    op.create_table(
        "stats_rollup",
        *(sa.Column(name, old.c[name].type, nullable=False, autoincrement=False) for name in BEFORE),
        *([sa.Column(IMAGES, sa.Boolean(), nullable=False)] if with_images else []),
        *(sa.Column(column.name, column.type, nullable=False, server_default="0") for column in figures),
        sa.PrimaryKeyConstraint(*keys),
    )
    counted = DEFAULT_SAMPLING if with_images else sa.and_(DEFAULT_SAMPLING, TEXT_ONLY)
    backfill(bind, [column.name for column in figures], counted, keys)
