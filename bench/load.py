"""Load: many chat users at once through the chat's asking and the real queue.

Users send their prompts concurrently (threads) through the chat's asking (prepare + submit),
as the bots do; then one real measurement worker, with the Ollama runner against
a fast local stand-in, answers them all. Prints enqueue latency and the worker's
steady throughput; `check()` is what the tests assert on.

The raw baseline runs in the same script, interleaved with joulebot's rounds: the same users
and threads enqueue a trivial job straight on RQ (JSONSerializer), and a raw RQ SimpleWorker
runs them. Throughput is steady state for both: jobs / (last job's end − first job's start),
from RQ's own timestamps, so neither worker's start-up counts. A second baseline runs the same
streamed chat on the same stand-in from a raw RQ job (Ollama's own client, a raw SimpleWorker in a
process of its own): the ratio to it is what joulebot adds around the model.

    python bench/load.py --users 200 --per-user 5 --rounds 3
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import ollama
import redis
from rq import Queue, SimpleWorker
from rq.job import Job
from rq.serializers import JSONSerializer
from standins import OllamaStandIn

from joulebot.chat.asking import InputError
from joulebot.chat.service import ChatService
from joulebot.config import Settings
from joulebot.history import HistoryStore
from joulebot.models.inventory import current_catalog
from joulebot.queueing.catalog import publish_catalog
from joulebot.queueing.client import QueueClient


@dataclass
class LoadReport:
    accepted: dict[str, list[str]] = field(default_factory=dict)  # user -> request ids, in sending order
    refused: dict[str, list[str]] = field(default_factory=dict)  # user -> refusal messages
    enqueue_ms: list[float] = field(default_factory=list)
    positions: list[int] = field(default_factory=list)
    worker_s: float = 0.0

    def percentile(self, p: float) -> float:
        return percentile(self.enqueue_ms, p)


def load_settings(base: Path, redis_url: str, ollama_url: str, **extra) -> Settings:
    return Settings(
        _env_file=None,
        JOULEBOT_DATA_DIR=base,
        redis_url=redis_url,
        queue_name=f"load-{uuid.uuid4().hex[:8]}",
        database_url=f"sqlite:///{base / 'history.sqlite3'}",
        ollama_host=ollama_url,
        default_model="tinyllama",
        idle_baseline_s=0.2,
        **extra,
    )


def send_all(settings: Settings, users: int, per_user: int, threads: int = 16) -> LoadReport:
    """Every user sends `per_user` prompts, one after the other; users run concurrently."""
    publish_catalog(QueueClient(settings).connection, settings.queue_name, current_catalog(settings))
    report = LoadReport()
    lock = threading.Lock()
    chat_local = threading.local()

    def user(n: int) -> None:
        chat = getattr(chat_local, "chat", None) or ChatService(settings, settings.queue_name)  # a platform per run
        chat_local.chat = chat
        name = f"user{n:03d}"
        for i in range(per_user):
            t0 = time.perf_counter()
            try:
                requests = chat.asking.prepare(name, name, f"{name} prompt {i}: what is {n} + {i}?", [None])
                chat.asking.submit(requests, None)
            except InputError as exc:
                with lock:
                    report.refused.setdefault(name, []).append(str(exc))
                continue
            elapsed = (time.perf_counter() - t0) * 1000
            with lock:
                report.enqueue_ms.append(elapsed)
                report.accepted.setdefault(name, []).append(requests[0].id)

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(user, range(users)))
    client = QueueClient(settings)
    report.positions = [client.job(rid).get_position() for ids in report.accepted.values() for rid in ids]
    return report


def worker_env(settings: Settings) -> dict[str, str]:
    """The environment of a `joulebot worker` serving these settings' queue."""
    return {
        k: str(v)
        for k, v in {
            "REDIS_URL": settings.redis_url,
            "QUEUE_NAME": settings.queue_name,
            "DATABASE_URL": settings.database_url,
            "OLLAMA_HOST": settings.ollama_host,
            "DEFAULT_MODEL": "tinyllama",
            "IDLE_BASELINE_S": "0.2",
            "JOULEBOT_DATA_DIR": settings.data_dir,
        }.items()
    }


def serve(settings: Settings, report: LoadReport, timeout_s: float = 600) -> None:
    """One real worker answers everything; returns when the queue is empty."""
    t0 = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "joulebot", "worker", "--burst"],
        env={**os.environ, **worker_env(settings)},
        check=True,
        timeout=timeout_s,
        capture_output=True,
    )
    report.worker_s = time.perf_counter() - t0


def deliver_all(settings: Settings) -> None:
    """What the bots do once answers are sent: nothing stays owed."""
    book = ChatService(settings, settings.queue_name).deliveries
    for delivery in book.pending():
        book.done(delivery)


def check(settings: Settings, report: LoadReport) -> list[str]:
    """What must hold: none lost, none duplicated, each user's answers in sending order."""
    problems = []
    rows = HistoryStore.open(settings.sqlalchemy_url)
    sent = [rid for ids in report.accepted.values() for rid in ids]
    stored = rows.request_ids("")
    if missing := set(sent) - stored:
        problems.append(f"{len(missing)} answers lost")
    if len(stored) != len(set(sent)):
        problems.append(f"{len(stored)} stored for {len(set(sent))} sent")
    client = QueueClient(settings)
    for user, ids in report.accepted.items():
        finished = [client.job(rid).ended_at for rid in ids]
        if finished != sorted(finished):
            problems.append(f"{user}'s answers out of order")
    if sorted(report.positions) != list(range(len(sent))):
        problems.append("queue positions are not 1..N")
    return problems


def steady_rate(connection: redis.Redis, job_ids: list[str]) -> float:
    """Jobs per second between the first job's start and the last job's end (RQ's timestamps)."""
    jobs = [j for j in Job.fetch_many(job_ids, connection=connection, serializer=JSONSerializer) if j]
    start, end = min(j.started_at for j in jobs), max(j.ended_at for j in jobs)
    return len(jobs) / (end - start).total_seconds()


RAW_BURST_WORKER = """
import sys
from redis import Redis
from rq import Queue, SimpleWorker
from rq.serializers import JSONSerializer
connection = Redis.from_url(sys.argv[1])
queue = Queue(sys.argv[2], connection=connection, serializer=JSONSerializer)
SimpleWorker([queue], connection=connection, serializer=JSONSerializer).work(burst=True, logging_level="WARNING")
"""

_ollama_clients: dict[str, ollama.Client] = {}
OPTIONS = {"num_ctx": 2048, "seed": 0}  # what joulebot's runner sends for tinyllama (another num_ctx: a reload)


def ollama_chat(host: str, prompt: str) -> int:
    """The second baseline's job: the same streamed chat joulebot's worker asks for, by Ollama's own
    client with a kept connection (as joulebot's runner does), and nothing else."""
    if host not in _ollama_clients:
        _ollama_clients[host] = ollama.Client(host=host)
    client = _ollama_clients[host]
    messages = [{"role": "user", "content": prompt}]
    stream = client.chat(model="tinyllama:1.1b", messages=messages, stream=True, options=OPTIONS, keep_alive="30m")
    parts = [chunk.message.content or "" for chunk in stream]
    return len("".join(parts))


def raw_round(
    redis_url: str, users: int, per_user: int, threads: int = 16, ollama_url: str | None = None
) -> tuple[list[float], float]:
    """The baseline: the same senders enqueue a trivial job on raw RQ; a raw SimpleWorker runs them.

    With `ollama_url`, each job is `ollama_chat` on the same stand-in instead, and the raw worker
    runs in a process of its own, as joulebot's does (the stand-in's threads live in this one)."""
    connection = redis.Redis.from_url(redis_url)
    queue = Queue(f"load-raw-{uuid.uuid4().hex[:8]}", connection=connection, serializer=JSONSerializer)
    enqueue_ms: list[float] = []
    ids: list[str] = []
    lock = threading.Lock()

    def user(n: int) -> None:
        for i in range(per_user):
            prompt = f"user{n:03d} prompt {i}: what is {n} + {i}?"
            t0 = time.perf_counter()
            if ollama_url is None:
                job = queue.enqueue("builtins.len", prompt)
            else:
                job = queue.enqueue("load.ollama_chat", ollama_url, prompt)
            elapsed = (time.perf_counter() - t0) * 1000
            with lock:
                enqueue_ms.append(elapsed)
                ids.append(job.id)

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(user, range(users)))
    if ollama_url is None:
        SimpleWorker([queue], connection=connection, serializer=JSONSerializer).work(
            burst=True, logging_level="WARNING"
        )
    else:
        here = str(Path(__file__).resolve().parent)
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [here, os.environ.get("PYTHONPATH")]))}
        subprocess.run([sys.executable, "-c", RAW_BURST_WORKER, redis_url, queue.name], env=env, check=True)
    rate = steady_rate(connection, ids)
    queue.delete(delete_jobs=True)
    return enqueue_ms, rate


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def load_average() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--per-user", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/14")
    args = parser.parse_args()
    load = os.getloadavg()
    print(f"load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f} on {os.cpu_count()} CPUs")
    standin = OllamaStandIn()
    raw_ms: list[float] = []
    jb_ms: list[float] = []
    raw_rates: list[float] = []
    runner_rates: list[float] = []
    jb_rates: list[float] = []
    for round_ in range(1, args.rounds + 1):
        enqueue_ms, rate = raw_round(args.redis_url, args.users, args.per_user)
        raw_ms += enqueue_ms
        raw_rates.append(rate)
        runner_rates.append(raw_round(args.redis_url, args.users, args.per_user, ollama_url=standin.url)[1])
        with tempfile.TemporaryDirectory(prefix="jb-load-") as tmp:
            settings = load_settings(
                Path(tmp),
                args.redis_url,
                standin.url,
                max_pending_per_user=args.per_user,
                max_prompts_per_minute=args.per_user,
            )
            report = send_all(settings, args.users, args.per_user)
            jb_ms += report.enqueue_ms
            serve(settings, report)
            sent = [rid for ids in report.accepted.values() for rid in ids]
            jb_rates.append(steady_rate(QueueClient(settings).connection, sent))
            problems = check(settings, report)
            deliver_all(settings)
        print(
            f"round {round_}: raw {rate:.0f}/s, raw with the Ollama chat {runner_rates[-1]:.0f}/s,"
            f" joulebot {jb_rates[-1]:.0f}/s;"
            f" checks: {problems or 'none lost, none duplicated, every user in order'}"
        )
    standin.close()
    raw_p50, raw_p99 = statistics.median(raw_ms), percentile(raw_ms, 99)
    jb_p50, jb_p99 = statistics.median(jb_ms), percentile(jb_ms, 99)
    raw_rate, jb_rate = statistics.median(raw_rates), statistics.median(jb_rates)
    runner_rate = statistics.median(runner_rates)
    print(f"\n{args.users} users × {args.per_user} prompts, {args.rounds} rounds interleaved (medians):")
    print(f"  enqueue p50: joulebot {jb_p50:.1f} ms vs raw RQ {raw_p50:.1f} ms = {jb_p50 / raw_p50:.2f}× (goal ≤ 1.5×)")
    print(f"  enqueue p99: joulebot {jb_p99:.1f} ms vs raw RQ {raw_p99:.1f} ms = {jb_p99 / raw_p99:.2f}× (goal ≤ 1.5×)")
    print(
        f"  throughput: joulebot {jb_rate:.0f} answers/s (Ollama stand-in, estimate meter, SQLite history)"
        f" vs raw RQ running the same Ollama chat {runner_rate:.0f} answers/s = {jb_rate / runner_rate:.2f}×"
        " (goal ≥ 0.95×)"
    )
    print(f"  (raw RQ running a trivial job: {raw_rate:.0f} jobs/s, {jb_rate / raw_rate:.2f}×; no longer a goal)")
    print(f"load average at the end {load_average()}")


if __name__ == "__main__":
    main()
