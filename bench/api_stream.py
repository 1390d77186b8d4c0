"""Streaming through the OpenAI-compatible API against the runner streaming on its own: the time
to the first token and the spacing of the chunks while tokens flow. Prints figures; asserts nothing.

Starts a Redis of its own, a measurement worker and `joulebot web` (processes, as deployed), makes
an API key, and for each model runs, interleaved, the raw runner in this process (its own stream,
every token seen) and the same question streamed through `/v1/chat/completions` (httpx, every
SSE event's arrival). The Ollama model is the stand-in streaming `--pieces` pieces `--piece-ms`
apart (a model's pace, no model's cost); SmolLM2 runs in llama.cpp. The API's first token
includes everything a deployment adds: the request, the queue, the worker's start of the job,
the answer's publication and its following. What the publishing costs the metered box is
`bench/stream_cost.py`'s figure.

    python bench/api_stream.py --n 5 [--api-stream-interval 0.05]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import httpx
from standins import OllamaStandIn, PrivateRedis, free_port

from joulebot.models.catalog import static_entries
from joulebot.models.llamacpp_runner import LlamaCppRunner
from joulebot.models.ollama_runner import OllamaRunner
from joulebot.models.runner import Runner, TextSink

QUESTION = "Write a short story about a lighthouse keeper and a storm."


def arrivals_raw(runner: Runner, model: str, max_tokens: int) -> list[float]:
    """Seconds from the call to each growth of the answer, the runner's own stream (every token)."""
    entry = next(e for e in static_entries() if e.name == model)
    times: list[float] = []
    t0 = time.perf_counter()
    sink = TextSink(lambda _text: times.append(time.perf_counter() - t0), interval_s=0.0)
    runner.generate(entry, [{"role": "user", "content": QUESTION}], max_tokens, sink)
    return times


def arrivals_api(base: str, key: str, model: str, max_tokens: int) -> list[float]:
    """Seconds from sending the request to each content chunk's arrival."""
    body = {"model": model, "max_tokens": max_tokens, "stream": True}
    body["messages"] = [{"role": "user", "content": QUESTION}]
    times: list[float] = []
    headers = {"authorization": f"Bearer {key}"}
    t0 = time.perf_counter()
    with httpx.stream("POST", f"{base}/v1/chat/completions", json=body, headers=headers, timeout=300) as response:
        for line in response.iter_lines():
            if not line.startswith("data: {"):
                continue
            choices = json.loads(line[6:]).get("choices") or [{}]
            if choices[0].get("delta", {}).get("content"):
                times.append(time.perf_counter() - t0)
    return times


def spacing(times: list[float]) -> list[float]:
    return [b - a for a, b in itertools.pairwise(times)]


def start(env: dict[str, str], *args: str) -> subprocess.Popen:
    command = [sys.executable, "-m", "joulebot", *args]
    return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def wait_for(ready: Callable[[], bool], what: str, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while not ready():
        if time.monotonic() > deadline:
            raise SystemExit(f"{what} did not start")
        time.sleep(0.2)


def answered(base: str, key: str) -> bool:
    try:
        return bool(arrivals_api(base, key, "llama3", 4))
    except httpx.HTTPError:
        return False


def report(name: str, raw: list[list[float]], api: list[list[float]]) -> None:
    first_raw = statistics.median(t[0] for t in raw if t)
    first_api = statistics.median(t[0] for t in api if t)
    gaps_raw = [g for t in raw for g in spacing(t)]
    gaps_api = [g for t in api for g in spacing(t)]

    def gaps(values: list[float]) -> str:
        if not values:
            return "no gaps (one chunk)"
        top = sorted(values)[int(0.95 * (len(values) - 1))]
        median = statistics.median(values)
        return f"median {median * 1000:.0f} ms, p95 {top * 1000:.0f} ms, max {max(values) * 1000:.0f} ms"

    print(f"{name}:")
    print(
        f"  first token   runner {first_raw * 1000:7.0f} ms · via /v1 {first_api * 1000:7.0f} ms · "
        f"+{(first_api - first_raw) * 1000:.0f} ms"
    )
    print(f"  chunk spacing runner {gaps(gaps_raw)}")
    print(f"                /v1    {gaps(gaps_api)}")
    print(
        f"  chunks per answer: runner {statistics.median(len(t) for t in raw):.0f}, "
        f"/v1 {statistics.median(len(t) for t in api):.0f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--n", type=int, default=5, help="answers per model and path")
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--pieces", type=int, default=60, help="the Ollama stand-in's pieces per answer")
    parser.add_argument("--piece-ms", type=float, default=30.0, help="the stand-in's time between pieces")
    parser.add_argument(
        "--api-stream-interval",
        type=float,
        default=None,
        help="API_STREAM_INTERVAL_S (how often a streamed API answer is published)",
    )
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="api-stream-"))
    server = PrivateRedis(root)
    server.start()
    ollama = OllamaStandIn({"llama3:8b": "8.0B"})
    ollama.answer = [f" word{i}" for i in range(args.pieces)]
    ollama.chunk_delay_s = args.piece_ms / 1000
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL", "QUEUE_NAME")}
    env.update(
        REDIS_URL=server.url,
        DATABASE_URL=f"sqlite:///{root / 'history.sqlite3'}",
        QUEUE_NAME="bench-box",
        BOX_NAME="bench-box",
        OLLAMA_HOST=ollama.url,
        JOULEBOT_DATA_DIR=str(root / "data"),
        METERS="estimate",
        MAX_PROMPTS_PER_MINUTE="1000",
    )
    if args.api_stream_interval is not None:
        env["API_STREAM_INTERVAL_S"] = str(args.api_stream_interval)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    processes = [start(env, "worker"), start(env, "web", "--port", str(port))]
    try:
        made = subprocess.run(
            [sys.executable, "-m", "joulebot", "keys", "create", "bench"], env=env, capture_output=True, text=True
        )
        key = made.stdout.strip()
        wait_for(lambda: answered(base, key), "the worker and joulebot web")
        runners: dict[str, Runner] = {"llama3": OllamaRunner(ollama.url), "smollm2-135m": LlamaCppRunner(threads=1)}
        interval = env.get("API_STREAM_INTERVAL_S", "0.05 (default)")
        load = " ".join(f"{x:.1f}" for x in os.getloadavg())
        print(f"{args.n} answers per path, max {args.max_tokens} tokens, API_STREAM_INTERVAL_S={interval}, load {load}")
        for model, runner in runners.items():
            arrivals_raw(runner, model, args.max_tokens)  # loaded and warm, as the worker's model is
            arrivals_api(base, key, model, args.max_tokens)
            raw: list[list[float]] = []
            api: list[list[float]] = []
            for i in range(args.n):  # interleaved: load on the machine lands on both alike
                for path in ("raw", "api") if i % 2 == 0 else ("api", "raw"):
                    if path == "raw":
                        raw.append(arrivals_raw(runner, model, args.max_tokens))
                    else:
                        api.append(arrivals_api(base, key, model, args.max_tokens))
            report(model, raw, api)
    finally:
        for process in processes:
            process.terminate()
            process.wait(30)
        ollama.close()
        server.kill()


if __name__ == "__main__":
    main()
