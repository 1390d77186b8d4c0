"""The benchmark's scores: which answers of a run await a check, each verdict stored with its exchange
(and moved in the statistics' running sums), and one run's answers with their verdicts."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from sqlalchemy import Connection, Engine, select, update
from sqlalchemy.sql import ColumnElement

from joulebot.history import rollup
from joulebot.history.engine import starting_with
from joulebot.history.exchanges import EXCHANGES
from joulebot.history.hint import GreenerHint

X = rollup.X

# One benchmark run's CSV: one row per answer, with its score
ANSWER_COLUMNS = (
    "request_id",
    "model",
    "category",
    "box",
    "energy_source",
    "energy_measured",
    "energy_total_j",
    "energy_attributable_j",
    "sci_g",
    "completion_tokens",
    "seconds",
    "correct",
    "score",
    "score_note",
)


class ScoreTask(BaseModel):
    """A measured benchmark answer that has not been scored yet."""

    id: int
    request_id: str
    category: str
    prompt: str
    answer: str


def _rescore(connection: Connection, where: ColumnElement[bool], values: dict[str, Any]) -> int:
    """Set the scores of the exchanges matching `where`, their old ones out of the rollup and the new in.

    Three statements in one transaction. On PostgreSQL the rows are locked first, so that two
    processes scoring the same answer at once each take out what the other put in.
    """
    if connection.dialect.name == "postgresql":
        connection.execute(select(X.id).where(where).with_for_update())
    rollup.add(connection, where, rollup.SCORES, sign=-1)
    changed = connection.execute(update(rollup.EXCHANGES).where(where).values(**values)).rowcount
    rollup.add(connection, where, rollup.SCORES)
    return changed


class Scores(GreenerHint):
    """The benchmark's verdicts (a part of HistoryStore); the hint's sums count them."""

    engine: Engine

    def _of_run(self, request_id: Any, prefix: str) -> ColumnElement[bool]:
        """The exchanges of one benchmark run: `request_id` (a column) starts with its `prefix`."""
        return starting_with(self.engine.dialect.name, request_id, prefix)

    def to_score(self, request_id_prefix: str) -> list[ScoreTask]:
        """The measured exchanges of a benchmark run that have no score yet, in order."""
        columns = EXCHANGES.c
        query = (
            select(columns.id, columns.request_id, columns.category, columns.prompt, columns.answer)
            .where(self._of_run(columns.request_id, request_id_prefix), columns.score_note.is_(None))
            .order_by(columns.id)
        )
        with self.engine.connect() as connection:
            rows = connection.execute(query).all()
        return [ScoreTask(id=i, request_id=r, category=c, prompt=p, answer=a) for i, r, c, p, a in rows]

    def clear_scores(self, request_id_prefix: str) -> int:
        """Forget the scores of a benchmark run (to check it again with changed references)."""
        with self.engine.begin() as connection:
            changed = _rescore(
                connection,
                self._of_run(X.request_id, request_id_prefix),
                {"correct": None, "score": None, "score_note": None},
            )
        self._hint_sums.clear()  # the hint's sums count scores
        return changed

    def set_score(self, exchange_id: int, correct: bool | None, score: float | None, note: str) -> None:
        with self.engine.begin() as connection:
            _rescore(connection, X.id == exchange_id, {"correct": correct, "score": score, "score_note": note[:200]})
        self._hint_sums.clear()  # the hint's sums count scores

    def answer_rows(self, request_id_prefix: str) -> list[dict]:
        """One benchmark run, one row per answer (for its CSV), with its score."""
        columns = [EXCHANGES.c[name] for name in ANSWER_COLUMNS]
        query = select(*columns).where(self._of_run(EXCHANGES.c.request_id, request_id_prefix)).order_by(EXCHANGES.c.id)
        with self.engine.connect() as connection:
            return [dict(row._mapping) for row in connection.execute(query)]
