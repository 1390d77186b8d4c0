"""Routing cost: what choosing a box adds to each request, with 1, 10 and 100 boxes.

Simulated boxes publish realistic profiles (three models, five tasks' measured
means each) into a Redis of the benchmark's own, through the worker's own
publishing script; each routing decision then reads the whole fleet (one script
call) and ranks it, exactly as `QueueClient.route` does. The raw baseline, in the
same run, is one PING: the least any decision made in Redis can cost. "cold" is a
front end that holds no parsed profile yet (each profile travels and is parsed).

    python bench/routing.py --requests 300
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import redis

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from standins import PrivateRedis

from joulebot.queueing.fleet import KEYS, BoxModel, BoxProfile, Fleet, MeanEnergy, publish_profile
from joulebot.queueing.routing import route

MODELS = ("llama3", "tinyllama", "smollm2-135m")
CATEGORIES = ("code", "math", "questions", "sql", "translation")


def profile(i: int) -> BoxProfile:
    return BoxProfile(
        box=f"box-{i:03d}",
        queue=f"box-{i:03d}",
        host=f"host-{i}",
        pid=1000 + i,
        zone="DE",
        intensity_g_per_kwh=50 + (i * 37) % 650,
        intensity_provenance="live",
        intensity_label="DE, live: Electricity Maps 2026-11-26 14:00 UTC",
        meter_scope=("wall", "components")[i % 2],
        meters=["mcp39f511n wall meter", "RAPL package-0"],
        models=[BoxModel(name=m, size="8.0B", parameters_b=8.0) for m in MODELS],
        means=[
            MeanEnergy(model=m, category=c, answers=5 + i % 20, mean_total_j=100.0 + i, mean_seconds=4.0)
            for m in MODELS
            for c in CATEGORIES
        ],
        embodied_g_per_s=0.0014,
    )


def measure(connection: redis.Redis, boxes: int, requests: int) -> tuple[float, float, float]:
    """(median ms, p95 ms, round trips) per routing decision over `boxes` published boxes."""
    for i in range(boxes):
        publish_profile(connection, profile(i), "idle")
    fleet = Fleet(connection, lost_after_s=30)
    fleet.boxes()  # loads the script (EVALSHA from then on, as in a long-running front end)
    fleet.round_trips = 0
    times = []
    for n in range(requests):
        started = time.perf_counter()
        decision = route(fleet.boxes(), MODELS[n % 3], CATEGORIES[n % 5], "greenest", 120.0)
        times.append((time.perf_counter() - started) * 1000)
        assert decision.box.startswith("box-")
    times.sort()
    return statistics.median(times), times[int(0.95 * (len(times) - 1))], fleet.round_trips / requests


def measure_cold(connection: redis.Redis, requests: int) -> float:
    """Median ms of a decision by a front end that holds no profile yet (or after every box changed)."""
    times = []
    for n in range(requests):
        started = time.perf_counter()
        route(Fleet(connection, lost_after_s=30).boxes(), MODELS[n % 3], CATEGORIES[n % 5], "greenest", 120.0)
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def ping_ms(connection: redis.Redis, requests: int) -> float:
    times = []
    for _ in range(requests):
        started = time.perf_counter()
        connection.ping()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--boxes", default="1,10,100")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        server = PrivateRedis(Path(tmp))
        server.start()
        try:
            connection = redis.Redis.from_url(server.url)
            baseline = ping_ms(connection, args.requests)
            print(f"baseline: one PING round trip, median {baseline:.3f} ms ({args.requests} requests)")
            print("| boxes | round trips / decision | median ms | p95 ms | median / PING | cold median ms |")
            print("|------:|-----------------------:|----------:|-------:|--------------:|---------------:|")
            for boxes in (int(b) for b in args.boxes.split(",")):
                connection.delete(*KEYS)
                median, p95, trips = measure(connection, boxes, args.requests)
                cold = measure_cold(connection, max(10, args.requests // 10))
                print(
                    f"| {boxes:5d} | {trips:22.0f} | {median:9.3f} | {p95:6.3f} | {median / baseline:12.1f}× "
                    f"| {cold:14.3f} |"
                )
            print("cold: a front end with no profile yet (its first decision, or after every box changed)")
        finally:
            server.kill()


if __name__ == "__main__":
    main()
