"""What the grid-zone line of a user's first answer costs the worker: `HistoryStore.is_first_answer`
beside `record` itself, on SQLite and PostgreSQL. Prints figures; asserts nothing.

It runs only while GRID_ZONE is unset, after the answer is stored: one probe of the exchanges' user_id
index the first time a store asks about a user, a set lookup after that. The history holds 5,000
answers of 50 users; then 200 answers of 60 users (10 of them new) are recorded and asked about.

    python bench/first_answer.py
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from factories import make_result  # the tests' Results, built from the real models
from testenv import postgres_schema

from joulebot.history import HistoryStore

FILL, USERS, ASKED, ASKING = 5_000, 50, 200, 60


def measure(url: str) -> str:
    store = HistoryStore.open(url)
    template = make_result()
    for i in range(FILL):
        result = template.model_copy(deep=True)
        result.request.id, result.request.user_id = f"fill-{i}", f"u{i % USERS}"
        store.record(result)
    recording, asking = [], []
    for i in range(ASKED):
        result = template.model_copy(deep=True)
        result.request.id, result.request.user_id = f"asked-{i}", f"u{i % ASKING}"
        start = time.perf_counter()
        exchange_id = store.record(result)
        recording.append(time.perf_counter() - start)
        start = time.perf_counter()
        store.is_first_answer(exchange_id, "cli", result.request.user_id)
        asking.append(time.perf_counter() - start)
    store.engine.dispose()
    record, first, every = (statistics.median(x) for x in (recording, asking[:ASKING], asking))
    return (
        f"record {record * 1e3:.2f} ms; is_first_answer: a user's first ask {first * 1e3:.3f} ms"
        f" ({first / record:.2f}× record), median of all {ASKED} {every * 1e3:.4f} ms ({every / record:.3f}×)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-postgres", action="store_true", help="SQLite only")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        print("SQLite:", measure(f"sqlite:///{Path(folder) / 'history.sqlite3'}"))
    if not args.no_postgres:  # JOULEBOT_TEST_POSTGRES_URL, in a fresh schema of its own
        schema = postgres_schema()
        try:
            print("PostgreSQL:", measure(next(schema)))
        finally:
            next(schema, None)  # drops it


if __name__ == "__main__":
    main()
