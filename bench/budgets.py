"""What the daily energy budget adds to each question: one read of the energy the asker's answers drew
since 00:00 UTC (`HistoryStore.energy_used`), on SQLite and PostgreSQL, with a year of history.

History: `--rows` exchanges over 365 days among `--users` users, of which one heavy user asked
`--heavy` of them (the worst case: the read must not walk their whole history). Each read is timed
with the budget indexes (migration 0027), then again with them dropped; the raw baseline, in the same
run, is the read every chat message already makes (`HistoryStore.asking`: the asker's preferences).

    python bench/budgets.py --rows 100000 --heavy 20000
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from factories import make_result
from testenv import postgres_schema

from joulebot.history import HistoryStore
from joulebot.history.exchanges import EXCHANGES
from joulebot.history.users import USERS

NOW = datetime(2026, 11, 27, 15, 0, tzinfo=UTC)
INDEXES = ("ix_exchanges_user_started", "ix_exchanges_platform_started")


def fill(store: HistoryStore, rows: int, users: int, heavy: int) -> None:
    """`rows` exchanges over the 365 days before NOW; user 0 ('heavy') has `heavy` of them."""
    store.record(make_result(platform="telegram", user_id="heavy"))
    with store.engine.begin() as connection:
        template = dict(connection.execute(sa.select(EXCHANGES)).mappings().one())
        del template["id"]
        connection.execute(sa.delete(EXCHANGES))
        connection.execute(
            sa.insert(USERS), [{"platform": "telegram", "platform_user_id": f"u{i}"} for i in range(1, users)]
        )
        ids = dict(connection.execute(sa.select(USERS.c.platform_user_id, USERS.c.id)).all())
        batch = []
        for n in range(rows):
            user = "heavy" if n < heavy else f"u{1 + n % (users - 1)}"
            started = NOW - timedelta(seconds=(n * 7919) % (365 * 86_400))
            row = {**template, "request_id": f"bench-{n}", "user_id": ids[user], "started_at": started}
            row.update(share_token=None, platform="web" if n % 10 == 0 else "telegram")
            batch.append(row)
            if len(batch) == 5000:
                connection.execute(sa.insert(EXCHANGES), batch)
                batch = []
        if batch:
            connection.execute(sa.insert(EXCHANGES), batch)
    with store.engine.begin() as connection:
        connection.execute(sa.text("ANALYZE"))


def timed(read: Callable[[], object], n: int) -> tuple[float, float]:
    """(median ms, p95 ms) of `n` calls after 20 warm-up calls."""
    for _ in range(20):
        read()
    times = []
    for _ in range(n):
        start = time.perf_counter()
        read()
        times.append((time.perf_counter() - start) * 1000)
    times.sort()
    return statistics.median(times), times[int(0.95 * (len(times) - 1))]


def run(name: str, url: str, args: argparse.Namespace) -> None:
    store = HistoryStore.open(url)
    fill(store, args.rows, args.users, args.heavy)
    day = NOW.replace(hour=0, minute=0, second=0, microsecond=0)
    reads = {
        "asking (baseline)": lambda: store.asking("telegram", "heavy"),
        "budget, heavy user": lambda: store.energy_used(day, "telegram", "heavy"),
        "budget, light user": lambda: store.energy_used(day, "telegram", "u7"),
        "budget, web chat": lambda: store.energy_used(day, "web"),
    }
    found = store.energy_used(day, "telegram", "heavy")
    print(f"{name}: {args.rows} rows, heavy user {args.heavy} rows ({found.answers} on the day)")
    results = {label: timed(read, args.n) for label, read in reads.items()}
    with store.engine.begin() as connection:
        for index in INDEXES:
            connection.execute(sa.text(f"DROP INDEX {index}"))
    for label in list(reads)[1:]:
        results[f"{label}, no index"] = timed(reads[label], args.n)
    base = results["asking (baseline)"][0]
    for label, (median, p95) in results.items():
        print(f"  {label:32} median {median:7.3f} ms  p95 {p95:7.3f} ms  ×{median / base:5.2f} of baseline")
    store.engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--heavy", type=int, default=20_000)
    parser.add_argument("--n", type=int, default=300, help="timed reads per case")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        run("SQLite", f"sqlite:///{Path(directory) / 'history.sqlite3'}", args)
    schemas = postgres_schema()
    run("PostgreSQL", next(schemas), args)
    schemas.close()


if __name__ == "__main__":
    main()
