"""Load: many chat users at once through the platform-neutral core and the real queue.

Users send their prompts concurrently (threads) through ChatCore.prepare + submit,
as the bots do; then one real measurement worker, with the Ollama runner against
a fast local stand-in, answers them all. Prints enqueue latency and the worker's
steady throughput; `check()` is what the tests assert on.

    python bench/load.py --users 200 --per-user 5
"""

from __future__ import annotations

import argparse
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

from standins import OllamaStandIn

from joulebot.chat.core import ChatCore, InputError
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
        ordered = sorted(self.enqueue_ms)
        return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def load_settings(base: Path, redis_url: str, ollama_url: str, **extra) -> Settings:
    return Settings(
        _env_file=None, JOULEBOT_DATA_DIR=base, redis_url=redis_url, queue_name=f"load-{uuid.uuid4().hex[:8]}",
        database_url=f"sqlite:///{base / 'history.sqlite3'}", ollama_host=ollama_url, default_model="tinyllama",
        idle_baseline_s=0.2, **extra,
    )  # fmt: skip


def send_all(settings: Settings, users: int, per_user: int, threads: int = 16) -> LoadReport:
    """Every user sends `per_user` prompts, one after the other; users run concurrently."""
    publish_catalog(QueueClient(settings).connection, settings.queue_name, current_catalog(settings))
    report = LoadReport()
    lock = threading.Lock()
    core_local = threading.local()

    def user(n: int) -> None:
        core = getattr(core_local, "core", None) or ChatCore(settings, settings.queue_name)  # a platform per run
        core_local.core = core
        name = f"user{n:03d}"
        for i in range(per_user):
            t0 = time.perf_counter()
            try:
                requests = core.prepare(name, name, f"{name} prompt {i}: what is {n} + {i}?", [None])
                core.submit(requests, None)
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


def serve(settings: Settings, report: LoadReport, timeout_s: float = 600) -> None:
    """One real worker answers everything; returns when the queue is empty."""
    env = {k: str(v) for k, v in {
        "REDIS_URL": settings.redis_url, "QUEUE_NAME": settings.queue_name, "DATABASE_URL": settings.database_url,
        "OLLAMA_HOST": settings.ollama_host, "DEFAULT_MODEL": "tinyllama", "IDLE_BASELINE_S": "0.2",
        "JOULEBOT_DATA_DIR": settings.data_dir,
    }.items()}  # fmt: skip
    import os

    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "joulebot", "worker", "--burst"], env={**os.environ, **env},
                   check=True, timeout=timeout_s, capture_output=True)  # fmt: skip
    report.worker_s = time.perf_counter() - t0


def deliver_all(settings: Settings) -> None:
    """What the bots do once answers are sent: nothing stays owed."""
    book = ChatCore(settings, settings.queue_name).deliveries
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--per-user", type=int, default=5)
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/14")
    args = parser.parse_args()
    ollama = OllamaStandIn()
    with tempfile.TemporaryDirectory(prefix="jb-load-") as tmp:
        settings = load_settings(Path(tmp), args.redis_url, ollama.url, max_pending_per_user=args.per_user,
                                 max_prompts_per_minute=args.per_user)  # fmt: skip
        t0 = time.perf_counter()
        report = send_all(settings, args.users, args.per_user)
        sending = time.perf_counter() - t0
        n = len(report.enqueue_ms)
        print(
            f"{n} prompts from {args.users} users enqueued in {sending:.2f} s;"
            f" enqueue latency p50 {statistics.median(report.enqueue_ms):.1f} ms, p99 {report.percentile(99):.1f} ms"
        )
        serve(settings, report)
        print(
            f"worker: {n} answers in {report.worker_s:.1f} s = {n / report.worker_s:.1f} answers/s"
            " (Ollama stand-in, estimate meter, SQLite history, including the worker's start)"
        )
        print("checks:", check(settings, report) or "none lost, none duplicated, every user's answers in order")
        deliver_all(settings)
    ollama.close()


if __name__ == "__main__":
    main()
