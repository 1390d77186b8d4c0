"""Pipeline overhead and cold start of the embedded default. Prints figures; asserts nothing.

Overhead = (submit → Result in the client) − the model's own generation time,
over tiny jobs (one generated token), through the real queue and worker, with the
history write included. Run from the repository root:

    python bench/pipeline.py --n 60
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from joulebot.chat.build import build_request
from joulebot.config import Settings
from joulebot.models import build_catalog
from joulebot.queueing.client import QueueClient
from joulebot.queueing.embedded import ensure_embedded_stack, stop_embedded_stack


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def overhead_ms(settings: Settings, n: int) -> list[float]:
    client = QueueClient(settings)
    catalog = build_catalog(settings.max_model_params_b)
    samples = []
    for i in range(n + 3):
        request = build_request(settings, catalog, platform="bench", user_id="bench", prompt="Hi")
        t0 = time.perf_counter()
        result = client.wait(client.submit(request))
        elapsed = time.perf_counter() - t0
        if i >= 3:  # the first jobs may still meet a warming worker
            samples.append((elapsed - result.generation_s) * 1000)
    return samples


def report(label: str, samples: list[float]) -> None:
    print(
        f"{label:<16} n={len(samples)}  median {statistics.median(samples):6.1f} ms"
        f"  p95 {percentile(samples, 95):6.1f} ms  min {min(samples):6.1f} ms"
    )


def bench_embedded(n: int, base: Path) -> None:
    settings = Settings(_env_file=None, JOULEBOT_DATA_DIR=base / "embedded", max_tokens=1, idle_baseline_s=0.5)
    ensure_embedded_stack(settings)
    try:
        report("embedded redis", overhead_ms(settings, n))
    finally:
        stop_embedded_stack(settings)


def bench_system(n: int, base: Path, url: str) -> None:
    queue = f"bench-{uuid.uuid4().hex[:8]}"
    settings = Settings(
        _env_file=None, JOULEBOT_DATA_DIR=base / "system", redis_url=url, queue_name=queue, max_tokens=1
    )
    env = {
        **os.environ,
        "REDIS_URL": url,
        "QUEUE_NAME": queue,
        "JOULEBOT_DATA_DIR": str(settings.data_dir),
        "IDLE_BASELINE_S": "0.5",
    }
    worker = subprocess.Popen([sys.executable, "-m", "joulebot", "worker"], env=env, stderr=subprocess.DEVNULL)
    try:
        report("system redis", overhead_ms(settings, n))
    finally:
        worker.terminate()
        worker.wait(30)


def cold_start(base: Path) -> None:
    env = {**os.environ, "JOULEBOT_DATA_DIR": str(base / "cold")}
    env.pop("REDIS_URL", None)
    env.pop("DATABASE_URL", None)
    times = []
    for _ in range(2):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "joulebot", "ask", "Say hi."], env=env, check=True, capture_output=True)
        times.append(time.perf_counter() - t0)
    subprocess.run([sys.executable, "-m", "joulebot", "stop"], env=env, check=True, capture_output=True)
    print(f"joulebot ask     first call (starts Redis + worker) {times[0]:.2f} s · second call {times[1]:.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=60)
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/15", help="system Redis; '' to skip")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="jb-bench-") as tmp:
        base = Path(tmp)
        bench_embedded(args.n, base)
        if args.redis_url:
            bench_system(args.n, base, args.redis_url)
        cold_start(base)


if __name__ == "__main__":
    main()
