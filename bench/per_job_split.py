"""Where one job's time goes, raw RQ against joulebot, from RQ's own timestamps. Prints; asserts nothing.

For each job (one generated token for joulebot, `len()` for raw RQ), in ms, medians per block:
enqueue (the client's call), enqueued → started (the worker takes it), run (minus generation for
joulebot), ended → result stored (RQ's bookkeeping), stored → the client has it. Both workers run
on the same Redis at once; blocks alternate.

    python bench/per_job_split.py --n 40 --rounds 3
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import redis
from pipeline import jb_settings, start_joulebot_worker, start_raw_worker
from rq import Queue
from rq.job import Job
from rq.serializers import JSONSerializer

from joulebot.chat.asking import build_request
from joulebot.models import build_catalog
from joulebot.queueing.client import QueueClient

PARTS = ("enqueue", "to start", "run", "to result", "to client", "total")


def stamp(moment: datetime) -> float:
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def split(job: Job, t0: float, t1: float, t2: float, generation_s: float = 0.0) -> dict[str, float]:
    job.refresh()
    stored = job.latest_result()
    assert job.started_at and job.ended_at and stored is not None
    started, ended, result_at = stamp(job.started_at), stamp(job.ended_at), stamp(stored.created_at)
    parts = (t1 - t0, started - t1, ended - started - generation_s, result_at - ended, t2 - result_at)
    return dict(zip(PARTS, [p * 1000 for p in (*parts, t2 - t0 - generation_s)], strict=True))


def raw_block(queue: Queue, n: int) -> list[dict[str, float]]:
    samples = []
    for _ in range(n):
        t0 = time.time()
        job = queue.enqueue("builtins.len", "Say hi.", result_ttl=60)
        t1 = time.time()
        job.latest_result(timeout=30)
        samples.append(split(job, t0, t1, time.time()))
    return samples


def joulebot_block(client: QueueClient, n: int) -> list[dict[str, float]]:
    catalog = build_catalog(client.settings.max_model_params_b)
    samples = []
    for _ in range(n):
        request = build_request(client.settings, catalog, platform="bench", user_id="bench", prompt="Say hi.")
        t0 = time.time()
        job = client.submit(request)
        t1 = time.time()
        result = client.wait(job)
        samples.append(split(job, t0, t1, time.time(), result.generation_s))
    return samples


def line(name: str, samples: list[dict[str, float]]) -> str:
    return f"  {name:<9}" + "".join(f"{part} {statistics.median(s[part] for s in samples):5.2f}   " for part in PARTS)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=40, help="jobs per block")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/14")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="jb-split-") as tmp:
        settings = jb_settings(Path(tmp), "split", args.redis_url)
        raw_queue = f"bench-raw-{uuid.uuid4().hex[:6]}"
        workers = [start_raw_worker(args.redis_url, raw_queue), start_joulebot_worker(settings)]
        try:
            queue = Queue(raw_queue, connection=redis.Redis.from_url(args.redis_url), serializer=JSONSerializer)
            client = QueueClient(settings)
            raw_block(queue, 3), joulebot_block(client, 3)  # warm-up: both workers up and warm
            print(f"ms per job, medians of {args.n} jobs per block (joulebot's run excludes generation):")
            for number in range(1, args.rounds + 1):
                print(f"round {number}")
                print(line("raw RQ", raw_block(queue, args.n)))
                print(line("joulebot", joulebot_block(client, args.n)))
        finally:
            for worker in workers:
                worker.terminate()
                worker.wait(30)


if __name__ == "__main__":
    sys.exit(main())
