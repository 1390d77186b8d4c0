"""Where `bench/load.py`'s time goes, step by step, against raw RQ. Prints figures; asserts nothing.

Enqueue (`--part enqueue`): one chat message through the chat's asking (prepare + submit, as the
bots call them) and, in the same process, raw RQ's `enqueue` of a job, one at a time (no thread
contends for the GIL: the load's p50 follows this CPU time); CPU µs per message, the lowest of
`--rounds` rounds (the machine's other load only ever adds), split by timing the steps the path
calls (their own functions, wrapped here).

Worker (`--part worker`): `--users` × 5 chat questions answered by `joulebot worker --burst`, and
the same number of raw RQ jobs running the same streamed Ollama chat (`load.ollama_chat`) by a raw
SimpleWorker, each worker with its steps timed (wall ms per job, the Ollama stand-in answering).

    python bench/load_split.py --part enqueue --rounds 5
    python bench/load_split.py --part worker --users 100
"""

from __future__ import annotations

import argparse
import atexit
import collections
import functools
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import load
import redis
from rq import Queue
from rq.serializers import JSONSerializer
from standins import OllamaStandIn

HERE = Path(__file__).resolve().parent

spans: dict[str, list[float]] = collections.defaultdict(lambda: [0, 0.0])
clock: Callable[[], float] = time.process_time
counting = [True]  # off while the raw baseline runs in the same process (it calls some of the same functions)


def timed(owner: Any, name: str, label: str) -> None:
    """Wrap `owner.name` so that every call adds its time (`clock`) to `spans[label]`."""
    original = getattr(owner, name)

    @functools.wraps(original)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        t0 = clock()
        try:
            return original(*args, **kwargs)
        finally:
            if counting[0]:
                span = spans[label]
                span[0] += 1
                span[1] += clock() - t0

    setattr(owner, name, wrapper)


# -- enqueue ---------------------------------------------------------------------------------
def enqueue_round(settings: Any, n: int) -> dict[str, float]:
    """CPU µs per message of each step, this round."""
    from joulebot.chat.service import ChatService

    spans.clear()
    chat = ChatService(settings, settings.queue_name)
    connection = redis.Redis.from_url(settings.redis_url)
    raw = Queue(f"split-raw-{uuid.uuid4().hex[:8]}", connection=connection, serializer=JSONSerializer)
    for i in range(n + 20):  # 20 to warm up, uncounted
        if i == 20:
            spans.clear()
        name = f"user{i % 200:03d}"
        t0 = clock()
        requests = chat.asking.prepare(name, name, f"{name} prompt {i}: what is {i} + {i}?", [None])
        chat.asking.submit(requests, None)
        spans["joulebot: whole enqueue"][1] += clock() - t0
        counting[0] = False
        t0 = clock()
        raw.enqueue("builtins.len", f"{name} prompt {i}: what is {i} + {i}?")
        spans["raw RQ: whole enqueue"][1] += clock() - t0
        counting[0] = True
    raw.delete(delete_jobs=True)
    for delivery in chat.deliveries.pending():
        chat.deliveries.done(delivery)
    return {label: seconds / n * 1e6 for label, (_, seconds) in spans.items()}


def split_enqueue(rounds: int, n: int) -> None:
    from redis.client import Pipeline

    from joulebot.chat import asking, preferences
    from joulebot.queueing.client import QueueClient

    timed(Pipeline, "execute", "Redis round trips (2: the reads, the MULTI/EXEC)")
    timed(preferences.Preferences, "of", "the preferences query (SQL)")
    timed(asking, "build_request", "build_request (checks, the Request)")
    timed(QueueClient, "_enqueue", "RQ's enqueue into the transaction")
    timed(QueueClient, "route", "routing")
    standin = OllamaStandIn()
    with tempfile.TemporaryDirectory(prefix="jb-split-") as tmp:
        unlimited = {"max_pending_per_user": 10**6, "max_prompts_per_minute": 10**6}
        settings = load.load_settings(Path(tmp), "redis://127.0.0.1:6379/14", standin.url, **unlimited)
        load.publish_catalog(QueueClient(settings).connection, settings.queue_name, load.current_catalog(settings))
        best: dict[str, float] = {}
        for _ in range(rounds):
            for label, us in enqueue_round(settings, n).items():
                best[label] = min(best.get(label, us), us)
        QueueClient(settings).queue.delete(delete_jobs=True)
    standin.close()
    whole, raw = best.pop("joulebot: whole enqueue"), best.pop("raw RQ: whole enqueue")
    print(f"one chat message's enqueue, CPU µs (lowest of {rounds} rounds of {n}), load {load.load_average()}:")
    print(f"  raw RQ enqueue (a trivial job): {raw:7.1f}")
    print(f"  joulebot prepare + submit:      {whole:7.1f} = {whole / raw:.2f}× raw")
    for label, us in sorted(best.items(), key=lambda item: -item[1]):
        print(f"    {label:50s} {us:7.1f}")
    print(f"    {'the rest (Pydantic, the Delivery, the checks)':50s} {whole - sum(best.values()):7.1f}")


# -- worker ----------------------------------------------------------------------------------
DEQUEUE, PERFORM, FUNCTION, RESULT = "RQ: dequeue", "RQ: perform_job", "  the job function", "  RQ: storing the Result"
WINDOW, CHAT, STORE = "    the measured window", "      the Ollama chat", "    the history write (waited for)"
RECORD = "      HistoryStore.record (on its thread)"
ORDER = (DEQUEUE, PERFORM, FUNCTION, WINDOW, CHAT, "    the Ollama chat", STORE, RECORD, RESULT)


def serve_timed(kind: str, redis_url: str, queue_name: str) -> None:
    """Run a burst worker of `kind` (raw or joulebot) with its steps timed; the spans to stderr at exit."""
    global clock
    clock = time.perf_counter
    import rq.job
    import rq.worker.base as base
    from rq.worker import SimpleWorker

    timed(base.BaseWorker, "dequeue_job_and_maintain_ttl", DEQUEUE)
    timed(base.BaseWorker, "perform_job", PERFORM)
    timed(rq.job.Job, "perform", FUNCTION)
    timed(base.BaseWorker, "handle_job_success", RESULT)
    atexit.register(lambda: print(json.dumps(spans), file=sys.stderr))
    if kind == "raw":
        timed(load, "ollama_chat", "    the Ollama chat")  # the whole job function
        connection = redis.Redis.from_url(redis_url)
        queue = Queue(queue_name, connection=connection, serializer=JSONSerializer)
        SimpleWorker([queue], connection=connection, serializer=JSONSerializer).work(
            burst=True, logging_level="WARNING"
        )
        return
    from joulebot.cli import main
    from joulebot.history.store import HistoryStore
    from joulebot.metering.answer_energy import MeasurementBox
    from joulebot.models.ollama_runner import OllamaRunner
    from joulebot.worker.station import Station

    timed(MeasurementBox, "measure", WINDOW)
    timed(OllamaRunner, "generate", CHAT)
    timed(Station, "_store", STORE)
    timed(HistoryStore, "record", RECORD)
    sys.argv = ["joulebot", "worker", "--burst"]
    main()


def worker_spans(command: list[str], env: dict[str, str]) -> dict[str, list[float]]:
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    found: dict[str, list[float]] = json.loads(done.stderr.strip().splitlines()[-1])  # serve_timed's last line
    return found


def split_worker(users: int) -> None:
    standin = OllamaStandIn()
    redis_url = "redis://127.0.0.1:6379/14"
    here = os.pathsep.join(filter(None, [str(HERE), os.environ.get("PYTHONPATH")]))
    connection = redis.Redis.from_url(redis_url)
    raw = Queue(f"split-raw-{uuid.uuid4().hex[:8]}", connection=connection, serializer=JSONSerializer)
    for n in range(users):
        for i in range(5):
            raw.enqueue("load.ollama_chat", standin.url, f"user{n:03d} prompt {i}: what is {n} + {i}?")
    command = [sys.executable, str(Path(__file__).resolve()), "--serve"]
    raw_spans = worker_spans([*command, "raw", redis_url, raw.name], {**os.environ, "PYTHONPATH": here})
    raw.delete(delete_jobs=True)
    with tempfile.TemporaryDirectory(prefix="jb-split-") as tmp:
        limits = {"max_pending_per_user": 5, "max_prompts_per_minute": 5}
        settings = load.load_settings(Path(tmp), redis_url, standin.url, **limits)
        load.send_all(settings, users, 5)
        env = {**os.environ, **load.worker_env(settings), "PYTHONPATH": here}
        jb_spans = worker_spans([*command, "joulebot", redis_url, settings.queue_name], env)
        load.deliver_all(settings)
    standin.close()
    print(f"{users * 5} answers per worker, wall ms per job, load {load.load_average()}:")
    totals = {}
    for name, found in (("raw RQ SimpleWorker, the same Ollama chat", raw_spans), ("joulebot worker", jb_spans)):
        each = {label: seconds / max(count, 1) * 1000 for label, (count, seconds) in found.items()}
        totals[name] = each[DEQUEUE] + each[PERFORM]
        print(f"  {name}: {totals[name]:.3f} in all")
        for label in ORDER:
            if label in each:
                print(f"    {label:50s} {each[label]:7.3f}")
    raw_total, jb_total = totals.values()
    print(f"  joulebot's jobs per second / raw's: {raw_total / jb_total:.2f}× (+{jb_total - raw_total:.3f} ms a job)")


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--serve":
        serve_timed(*sys.argv[2:5])
        return
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--part", choices=("enqueue", "worker"), default="enqueue")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--n", type=int, default=500, help="messages per enqueue round")
    parser.add_argument("--users", type=int, default=100, help="users (× 5 questions) for the worker part")
    args = parser.parse_args()
    if args.part == "enqueue":
        split_enqueue(args.rounds, args.n)
    else:
        split_worker(args.users)


if __name__ == "__main__":
    main()
