"""Pipeline overhead against raw RQ, a warm and a cold `joulebot ask`. Prints figures; asserts nothing.

Each figure is printed next to its raw baseline, measured in the same run, A/B interleaved
(rounds of: raw, joulebot, joulebot with a large history), with medians:

- per-job overhead: joulebot's (submit → Result in the client) − the model's own generation
  time, one generated token, through the real queue and worker with the history write,
  against raw RQ's round trip (SimpleWorker, JSONSerializer, a trivial job, waited for the
  same way); at 0 and at `--history` exchanges in history; and the worker's CPU per job;
- warm `joulebot ask` (whole process) against a script that enqueues one job on a raw worker
  and waits for its result, both on the same Redis;
- cold `joulebot ask` on a fresh home (starts Redis and the worker, loads the model): its
  time minus the model load, and a one-script baseline (import llama.cpp, load, answer).

Run from the repository root (the machine's other load changes every figure: compare ratios):

    python bench/pipeline.py --n 30 --rounds 3 --history 100000

The statistics queries at scale alone (no Redis, no worker), on SQLite and PostgreSQL:

    python bench/pipeline.py --stats-only --history 100000
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import psutil
import redis
from rq import Queue
from rq.serializers import JSONSerializer

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from factories import make_result
from sqlalchemy import insert, select

import joulebot
from joulebot.chat.asking import build_request
from joulebot.config import Settings
from joulebot.history import HistoryStore, rollup
from joulebot.history.tables import Exchange
from joulebot.models import build_catalog
from joulebot.queueing.client import QueueClient
from joulebot.queueing.connection import socket_path
from joulebot.queueing.embedded import stop_embedded_stack

RAW_WORKER = """
import sys
from redis import Redis
from rq import Queue, SimpleWorker
from rq.serializers import JSONSerializer
connection = Redis.from_url(sys.argv[1])
queue = Queue(sys.argv[2], connection=connection, serializer=JSONSerializer)
SimpleWorker([queue], connection=connection, serializer=JSONSerializer).work(logging_level="WARNING")
"""

RAW_ENQUEUE = """
import sys
from redis import Redis
from rq import Queue
from rq.serializers import JSONSerializer
queue = Queue(sys.argv[2], connection=Redis.from_url(sys.argv[1]), serializer=JSONSerializer)
job = queue.enqueue("builtins.len", "Say hi.", result_ttl=60)
print(job.latest_result(timeout=30).return_value)
"""

RAW_LLAMA = """
import sys, time
t0 = time.perf_counter()
from llama_cpp import Llama
llm = Llama(model_path=sys.argv[1], n_ctx=2048, n_threads=int(sys.argv[2]), seed=0, verbose=False)
load = time.perf_counter() - t0
out = llm.create_chat_completion(messages=[{"role": "user", "content": "Say hi."}], max_tokens=1, seed=0)
print(f"{load:.3f}")
"""

RUN_PREFIX, RUN_SIZE = "bench-r%04d-", 500
MODELS = ("smollm2-135m", "tinyllama", "mistral", "gemma", "llama3")
CATEGORIES = ("code", "math", "questions", "sql", "translation")


def median(values: list[float]) -> float:
    return statistics.median(values)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def ratio(value: float, raw: float) -> str:
    return f"{value / raw:.2f}×" if raw > 0 else "n/a"


# --- history of a deployment ---------------------------------------------------------------
def seed_history(url: str, exchanges: int) -> None:
    """`exchanges` rows like real ones (the whole Result JSON included), spread over models and tasks."""
    store = HistoryStore.open(url)
    template_id = store.record(make_result(user_id="seed"))
    with store.engine.connect() as connection:
        template = dict(connection.execute(select(Exchange.__table__).where(Exchange.id == template_id)).one()._mapping)
    template.pop("id")
    batch: list[dict] = []
    with store.engine.begin() as connection:
        for i in range(exchanges - 1):
            batch.append(
                {
                    **template,
                    "request_id": f"{RUN_PREFIX % (i // RUN_SIZE)}{i}",  # campaign runs of RUN_SIZE answers
                    "model": MODELS[i % 5],
                    "category": CATEGORIES[i // 5 % 5],
                    "energy_total_j": 1.0 + (i % 97) / 10,
                    "energy_attributable_j": 0.5 + (i % 89) / 10,
                    "box": "testbox" if i % 7 else "otherbox",
                    "turn": 2 if i % 10 == 9 else 1,  # a tenth continue a conversation
                    "correct": (None, True, False)[i % 3],  # two thirds scored
                    "image_count": 1 if i % 8 == 7 else 0,  # an eighth read an image: a basis of their own
                }
            )
            if len(batch) == 5000:
                connection.execute(insert(Exchange.__table__), batch)
                batch = []
        if batch:
            connection.execute(insert(Exchange.__table__), batch)
        rollup.rebuild(connection)  # the rows went around HistoryStore.record: their sums too
    store.engine.dispose()


# --- workers --------------------------------------------------------------------------------
def start_raw_worker(url: str, queue: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", RAW_WORKER, url, queue], stderr=subprocess.DEVNULL)


def joulebot_env(settings: Settings) -> dict[str, str]:
    env = {
        **os.environ,
        "REDIS_URL": settings.redis_url,
        "QUEUE_NAME": settings.queue_name,
        "DATABASE_URL": settings.database_url,
        "JOULEBOT_DATA_DIR": str(settings.data_dir),
        "BOX_NAME": settings.box_name,
        "IDLE_BASELINE_S": "0.5",
        "MAX_TOKENS": "1",
    }
    return env


def start_joulebot_worker(settings: Settings) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "joulebot", "worker"], env=joulebot_env(settings), stderr=subprocess.DEVNULL
    )


def jb_settings(base: Path, name: str, url: str) -> Settings:
    return Settings(
        _env_file=None,
        JOULEBOT_DATA_DIR=base / name,
        redis_url=url,
        queue_name=f"bench-{name}-{uuid.uuid4().hex[:6]}",
        database_url=f"sqlite:///{base / name / 'history.sqlite3'}",
        max_tokens=1,
        box_name=f"bench-{name}",
    )


# --- one block of jobs ------------------------------------------------------------------------
def raw_block(url: str, queue_name: str, n: int) -> list[float]:
    queue = Queue(queue_name, connection=redis.Redis.from_url(url), serializer=JSONSerializer)
    samples = []
    for _ in range(n):
        t0 = time.perf_counter()
        job = queue.enqueue("builtins.len", "Say hi.", result_ttl=60)
        outcome = job.latest_result(timeout=30)
        samples.append((time.perf_counter() - t0) * 1000)
        assert outcome is not None and outcome.return_value == 7
    return samples


def joulebot_block(settings: Settings, n: int) -> list[float]:
    client = QueueClient(settings)
    catalog = build_catalog(settings.max_model_params_b)
    samples = []
    for _ in range(n):
        request = build_request(settings, catalog, platform="bench", user_id="bench", prompt="Say hi.")
        t0 = time.perf_counter()
        result = client.wait(client.submit(request))
        samples.append(((time.perf_counter() - t0) - result.generation_s) * 1000)
    return samples


def cpu_s(process: subprocess.Popen) -> float:
    times = psutil.Process(process.pid).cpu_times()
    return times.user + times.system


def interleaved(blocks: dict[str, tuple[Callable[..., list[float]], subprocess.Popen]], rounds: int):
    """Every variant once per round, in turn; their samples and the worker's CPU per job."""
    samples: dict[str, list[float]] = {name: [] for name in blocks}
    cpu: dict[str, list[float]] = {name: [] for name in blocks}
    for block, _ in blocks.values():  # warm-up: the first jobs meet a warming worker
        block(3)
    for _ in range(rounds):
        for name, (block, worker) in blocks.items():
            before = cpu_s(worker)
            got = block()
            cpu[name].append((cpu_s(worker) - before) / len(got) * 1000)
            samples[name].extend(got)
    return samples, cpu


def bench_overhead(base: Path, url: str, n: int, rounds: int, history: int, postgres_url: str) -> None:
    raw_queue = f"bench-raw-{uuid.uuid4().hex[:6]}"
    empty, full = jb_settings(base, "empty", url), jb_settings(base, "full", url)
    t0 = time.perf_counter()
    seed_history(full.database_url, history)
    print(f"seeded {history} exchanges in {time.perf_counter() - t0:.0f} s")
    HistoryStore.open(empty.database_url).engine.dispose()
    print(f"statistics at {history} exchanges:")
    bench_stats(full.database_url, "SQLite")
    if postgres_url:
        bench_stats_postgres(postgres_url, history)
    workers = [start_raw_worker(url, raw_queue), start_joulebot_worker(empty), start_joulebot_worker(full)]
    try:
        blocks = {
            "raw RQ": (lambda k=n: raw_block(url, raw_queue, k), workers[0]),
            "joulebot, 0": (lambda k=n: joulebot_block(empty, k), workers[1]),
            f"joulebot, {history}": (lambda k=n: joulebot_block(full, k), workers[2]),
        }
        samples, cpu = interleaved(blocks, rounds)
    finally:
        for worker in workers:
            worker.terminate()
            worker.wait(30)
    raw = median(samples["raw RQ"])
    raw_cpu = median(cpu["raw RQ"])
    print(f"\nper-job overhead, system Redis ({url}), {rounds} rounds × {n} jobs, interleaved; medians:")
    for name in blocks:
        got = samples[name]
        print(
            f"  {name:<18} {median(got):6.2f} ms (p95 {percentile(got, 95):6.2f})  = {ratio(median(got), raw)} raw"
            f"   worker CPU {median(cpu[name]):5.2f} ms/job = {ratio(median(cpu[name]), raw_cpu)} raw"
        )
    flat = median(samples[f"joulebot, {history}"]) / median(samples["joulebot, 0"])
    print(f"  history {history} vs 0: {flat:.2f}× (goal: within 1.10×); goal per job ≤ 1.50× raw")
    bench_warm_ask(empty, url, raw_queue, rounds)


def bench_stats_only(base: Path, history: int, postgres_url: str) -> None:
    """The statistics queries at scale, on SQLite and (unless '') PostgreSQL, without the queue."""
    url = f"sqlite:///{base / 'stats.sqlite3'}"
    t0 = time.perf_counter()
    seed_history(url, history)
    print(f"seeded {history} exchanges in {time.perf_counter() - t0:.0f} s")
    print(f"statistics at {history} exchanges:")
    bench_stats(url, "SQLite")
    if postgres_url:
        bench_stats_postgres(postgres_url, history)


def bench_stats(url: str, label: str) -> None:
    """Every statistics query on a large history (SQL aggregates over the rollup; one run's over its rows)."""
    store = HistoryStore(url)
    store.HINT_REFRESH_S = 0.0  # time the hint's SQL aggregate itself (a worker runs it once a minute)
    queries = {
        "category_stats (joulebot stats)": store.category_stats,
        "category_stats, later turns": lambda: store.category_stats(continued=True),
        "category_stats, one box": lambda: store.category_stats(box="otherbox"),
        "category_stats, with images": lambda: store.category_stats(images=True),
        "model_stats (/stats)": store.model_stats,
        "greener_hint SQL (every footer)": lambda: store.greener_hint(
            "code", "mistral", list(MODELS), box="testbox", source="estimate"
        ),
        "box_means (routing)": lambda: store.box_means("testbox", dict.fromkeys(MODELS, "")),
        f"one campaign run ({RUN_SIZE} answers)": lambda: store.category_stats(RUN_PREFIX % 42),
    }
    for name, query in queries.items():
        query()  # warm the cache and the pool
        times = []
        for _ in range(7):
            t0 = time.perf_counter()
            query()
            times.append((time.perf_counter() - t0) * 1000)
        print(f"  {label:<10} {name:<34} median {median(times):6.1f} ms (min {min(times):.1f}; goal ≤ 50 ms)")
    store.engine.dispose()


def bench_stats_postgres(postgres_url: str, history: int) -> None:
    import sqlalchemy

    schema = f"jb_bench_{uuid.uuid4().hex[:8]}"
    engine = sqlalchemy.create_engine(postgres_url)
    with engine.begin() as connection:
        connection.execute(sqlalchemy.text(f"CREATE SCHEMA {schema}"))
    try:
        url = f"{postgres_url}?options=-csearch_path%3D{schema}"
        seed_history(url, history)
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(sqlalchemy.text(f"VACUUM ANALYZE {schema}.exchanges"))  # as autovacuum would
        bench_stats(url, "PostgreSQL")
    finally:
        with engine.begin() as connection:
            connection.execute(sqlalchemy.text(f"DROP SCHEMA {schema} CASCADE"))
        engine.dispose()


def timed(args: list[str], env: dict[str, str] | None = None) -> float:
    t0 = time.perf_counter()
    subprocess.run(args, env=env, check=True, capture_output=True)
    return time.perf_counter() - t0


def bench_warm_ask(settings: Settings, url: str, raw_queue: str, rounds: int) -> None:
    """Whole processes, interleaved: `joulebot ask` on a warm worker vs the raw enqueue script."""
    workers = [start_raw_worker(url, raw_queue), start_joulebot_worker(settings)]
    env = joulebot_env(settings)
    try:
        ask = [sys.executable, "-m", "joulebot", "ask", "Say hi."]
        raw_script = [sys.executable, "-c", RAW_ENQUEUE, url, raw_queue]
        timed(ask, env), timed(raw_script)  # both warm
        asks, raws = [], []
        for _ in range(max(5, rounds * 3)):
            raws.append(timed(raw_script))
            asks.append(timed(ask, env))
    finally:
        for worker in workers:
            worker.terminate()
            worker.wait(30)
    print(
        f"\nwarm `joulebot ask` (1 token), whole process, {len(asks)} interleaved: median {median(asks):.3f} s"
        f" vs raw enqueue script {median(raws):.3f} s = {ratio(median(asks), median(raws))} (goal ≤ 1.50×)"
    )


def bench_cold(base: Path) -> None:
    """A fresh home: the first `joulebot ask` starts Redis and the worker and loads the model."""
    data = base / "cold"
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL", "QUEUE_NAME")}
    env.update(JOULEBOT_DATA_DIR=str(data), MAX_TOKENS="1", BOX_NAME=f"bench-cold-{uuid.uuid4().hex[:6]}")
    settings = Settings(_env_file=None, JOULEBOT_DATA_DIR=data, box_name=env["BOX_NAME"])
    t0 = time.perf_counter()
    first = subprocess.run(
        [sys.executable, "-m", "joulebot", "ask", "Say hi.", "--json"],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    cold = time.perf_counter() - t0
    generation = json.loads(first.stdout)["generation_s"]
    log = (data / "worker.log").read_text()
    found = re.search(r"loaded in ([\d.]+) s, warmed up in ([\d.]+) s", log)
    load, warmup = (float(found.group(1)), float(found.group(2))) if found else (float("nan"), float("nan"))
    raw_queue = f"bench-raw-{uuid.uuid4().hex[:6]}"
    socket_url = f"unix://{socket_path(settings)}"
    raw_worker = start_raw_worker(socket_url, raw_queue)
    try:
        ask = [sys.executable, "-m", "joulebot", "ask", "Say hi."]
        raw_script = [sys.executable, "-c", RAW_ENQUEUE, socket_url, raw_queue]
        timed(raw_script)
        asks, raws = [], []
        for _ in range(5):
            raws.append(timed(raw_script))
            asks.append(timed(ask, env))
    finally:
        raw_worker.terminate()
        raw_worker.wait(30)
        stop_embedded_stack(settings)
    catalog = build_catalog(9.0)
    gguf = catalog.resolve("smollm2-135m").gguf
    threads = str(Settings(_env_file=None).llama_threads)
    raw_llama, raw_loads = [], []
    for _ in range(3):
        t0 = time.perf_counter()
        out = subprocess.run(
            [sys.executable, "-c", RAW_LLAMA, str(gguf.path()), threads], check=True, capture_output=True, text=True
        )
        raw_llama.append(time.perf_counter() - t0)
        raw_loads.append(float(out.stdout.split()[-1]))
    print(
        f"\ncold `joulebot ask` on a fresh home: {cold:.2f} s, of which model load {load:.2f} s (worker log) and"
        f" generation {generation:.2f} s → {cold - load - generation:.2f} s besides them (goal ≤ 1.5 s);"
        f" besides the warm-up generation too ({warmup:.2f} s: its first evaluation pages the weights in,"
        f" which the one-script baseline's answer also pays): {cold - load - warmup - generation:.2f} s"
        f"\n  baseline, one script (import llama.cpp + load + 1 token): median {median(raw_llama):.2f} s"
        f" (import + load {median(raw_loads):.2f} s)"
        f"\nwarm `joulebot ask`, embedded Redis, 5 interleaved: median {median(asks):.3f} s vs raw enqueue script"
        f" on the same socket {median(raws):.3f} s = {ratio(median(asks), median(raws))} (goal ≤ 1.50×)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=30, help="jobs per block")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--history", type=int, default=100_000, help="exchanges in the large history")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/14", help="system Redis; '' to skip the queue")
    parser.add_argument(
        "--postgres-url",
        default="postgresql+psycopg://postgres@127.0.0.1:5432/test",
        help="PostgreSQL for the statistics at scale; '' to skip",
    )
    parser.add_argument("--skip-cold", action="store_true")
    parser.add_argument(
        "--stats-only",
        action="store_true",
        help="only the statistics at --history exchanges (SQLite, PostgreSQL), as with --redis-url ''",
    )
    args = parser.parse_args()
    # Both sides start from compiled bytecode, as an installed joulebot does (pip compiles it; an
    # editable checkout caches it on first import unless PYTHONDONTWRITEBYTECODE is set, as on our VMs,
    # where each `joulebot ask` would otherwise compile its own modules again: +30–40 ms).
    compileall.compile_dir(Path(joulebot.__file__).parent, quiet=1)
    load = os.getloadavg()
    print(f"load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f} on {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory(prefix="jb-bench-") as tmp:
        base = Path(tmp)
        if args.redis_url and not args.stats_only:
            bench_overhead(base, args.redis_url, args.n, args.rounds, args.history, args.postgres_url)
        else:  # without the queue: the statistics alone
            bench_stats_only(base, args.history, args.postgres_url)
        if not args.skip_cold and not args.stats_only:
            bench_cold(base)


if __name__ == "__main__":
    main()
