"""The dashboard's table page with a large history. Prints figures; asserts nothing.

Fills a history with N exchanges (default 100 000: 2 boxes × 2 energy sources ×
8 models × 5 categories, realistic rows with their Result JSON), then times:

- the baseline: the table's aggregate (count, sum, sum of squares per cell) straight over the rows;
- the table from the statistics' rollup (what the dashboard reads), each page and /metrics through the
  whole app (Starlette, the sums, the heatmaps, the template).

Run from the repository root (SQLite in a temporary directory; add a PostgreSQL URL to time it too):

    python bench/web_table.py --n 100000 [--postgres postgresql+psycopg://postgres@127.0.0.1:5432/test]
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
from starlette.testclient import TestClient

from joulebot.carbon import Embodied, carbon_for, static_intensity
from joulebot.config import Settings
from joulebot.exchange import Request, Result
from joulebot.history import HistoryStore, rollup
from joulebot.history.aggregates import METRICS
from joulebot.history.tables import Exchange
from joulebot.metering import Energy, IdleBaseline, Reading
from joulebot.web.app import create_app
from joulebot.web.history_view import EXCHANGES, HistoryView

MODELS = ["smollm2-135m", "tinyllama", "llama3", "mistral", "gemma", "codellama", "stablelm2", "sqlcoder"]
CATEGORIES = ["code", "math", "questions", "sql", "translation"]
POPULATIONS = [
    ("box-a", "mcp39f511n", True),
    ("box-a", "estimate", False),
    ("box-b", "rapl+nvml", True),
    ("box-b", "estimate", False),
]


def template_result() -> dict:
    """A real Result as history stores it, to copy into every row (the JSON column's realistic size)."""
    now = datetime.now(UTC)
    reading = Reading(
        source="mcp39f511n",
        scope="machine",
        measured=True,
        joules=40.0,
        seconds=4.0,
        samples=40,
        method="power sampled every 100 ms",
    )
    idle = IdleBaseline(watts=6.0, seconds=2.0, source="mcp39f511n", measured=True, measured_at=now)
    energy = Energy(total_j=40.0, attributable_j=16.0, seconds=4.0, idle=idle, machine=reading)
    carbon = carbon_for(40.0, 4.0, static_intensity("DE"), Embodied(te_g=181_000, lifespan_years=4))
    request = Request(platform="bench", user_id="bench", model="tinyllama", prompt="")
    result = Result(
        request=request,
        answer="",
        model="tinyllama",
        model_size="1.1B",
        prompt_tokens=20,
        completion_tokens=100,
        generation_s=4.0,
        load_s=0.0,
        energy=energy,
        carbon=carbon,
        box="box-a",
        started_at=now,
        finished_at=now + timedelta(seconds=4),
    )
    return result.model_dump(mode="json")


def fill(url: str, n: int) -> None:
    store = HistoryStore.open(url)  # migrates
    result, rng, start = template_result(), random.Random(17), datetime.now(UTC) - timedelta(days=30)
    table, batch = Exchange.__table__, []  # type: ignore[attr-defined]
    with store.engine.begin() as connection:
        for i in range(n):
            box, source, measured = POPULATIONS[i % len(POPULATIONS)]
            model, category = MODELS[(i // 4) % len(MODELS)], CATEGORIES[(i // 32) % len(CATEGORIES)]
            joules = rng.lognormvariate(3.5 + MODELS.index(model) * 0.3, 0.4)
            tokens = rng.randint(20, 256)
            batch.append(
                dict(
                    request_id=uuid.uuid4().hex,
                    platform="bench",
                    model=model,
                    category=category,
                    prompt="",
                    answer="",
                    prompt_tokens=20,
                    completion_tokens=tokens,
                    started_at=start + timedelta(seconds=i * 25),
                    seconds=4.0,
                    load_s=0.0,
                    energy_total_j=joules,
                    energy_attributable_j=joules * 0.6,
                    idle_w=6.0,
                    energy_source=source,
                    energy_measured=measured,
                    intensity_g_per_kwh=381.0,
                    intensity_zone="DE",
                    intensity_provenance="static",
                    operational_g=joules / 3.6e6 * 381,
                    embodied_g=5.7e-3,
                    sci_g=joules / 3.6e6 * 381 + 5.7e-3,
                    box=box,
                    result=result,
                    meter_failures=0,
                    created_at=start,
                )
            )
            if len(batch) == 5000:
                connection.execute(table.insert(), batch)
                batch = []
        if batch:
            connection.execute(table.insert(), batch)
        rollup.rebuild(connection)  # the rows went around HistoryStore.record: their sums too
    if store.engine.dialect.name == "postgresql":  # what autovacuum does soon after: statistics, visibility map
        with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(sa.text("VACUUM ANALYZE exchanges"))
    store.engine.dispose()


def timed(call: Callable[[], object], repeat: int) -> list[float]:
    call()  # warm: connections, templates, the database's page cache
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        call()
        samples.append((time.perf_counter() - t0) * 1000)
    return samples


def report(label: str, samples: list[float]) -> float:
    median = statistics.median(samples)
    spread = f"min {min(samples):8.1f}   max {max(samples):8.1f}   (n={len(samples)})"
    print(f"  {label:<26} median {median:8.1f} ms   {spread}")
    return median


def bench(label: str, url: str, n: int, repeat: int) -> None:
    t0 = time.perf_counter()
    fill(url, n)
    print(f"{label}: {n} exchanges written in {time.perf_counter() - t0:.1f} s")
    view = HistoryView(url)
    settings = Settings(_env_file=None, database_url=url, redis_url="redis://127.0.0.1:1/0")  # the table needs no Redis
    with TestClient(create_app(settings)) as client:
        assert client.get("/").status_code == 200
        rows = report("aggregate over the rows", timed(lambda: over_rows(view), repeat))
        table = report("table from the rollup (SCI)", timed(lambda: view.table(METRICS["sci"]), repeat))
        page = report("GET / (SCI)", timed(lambda: client.get("/"), repeat))
        report("GET /?metric=j_token", timed(lambda: client.get("/?metric=j_token"), repeat))
        report("GET /api/table.json", timed(lambda: client.get("/api/table.json"), repeat))
        report("GET /metrics", timed(lambda: client.get("/metrics"), max(3, repeat // 3)))
    print(
        f"  rollup table / the same aggregate over the rows = {table / rows:.2f}×; page {page:.1f} ms"
        " (goals: every statistics query ≤ 50 ms, page < 200 ms)"
    )
    view.close()


def over_rows(view: HistoryView) -> list:
    """The SCI table's aggregate straight over the exchanges (what the dashboard read before the rollup)."""
    c, x = EXCHANGES.c, EXCHANGES.c.sci_g
    keys = (c.box, c.energy_source, c.energy_measured, c.model, c.category)
    query = sa.select(*keys, sa.func.count(x), sa.func.sum(x), sa.func.sum(x * x)).where(x.is_not(None)).group_by(*keys)
    with view.engine.connect() as connection:
        return connection.execute(query).all()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--postgres", default="", help="a PostgreSQL URL: a fresh schema is made and dropped there")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        bench("SQLite", f"sqlite:///{Path(tmp) / 'history.sqlite3'}", args.n, args.repeat)
    if args.postgres:
        schema = f"bench_{uuid.uuid4().hex[:8]}"
        admin = sa.create_engine(args.postgres)
        with admin.begin() as connection:
            connection.execute(sa.text(f"CREATE SCHEMA {schema}"))
        try:
            bench("PostgreSQL", f"{args.postgres}?options=-csearch_path%3D{schema}", args.n, args.repeat)
        finally:
            with admin.begin() as connection:
                connection.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
            admin.dispose()


if __name__ == "__main__":
    main()
