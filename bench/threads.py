"""llama.cpp threads: tokens/s of the embedded model at `cores` and `cores − 1` threads, A/B interleaved.

On a small box, llama.cpp's threads spin while they wait for each other: when anything else
runs (the worker's own Python, Redis, a bot, another tenant), one thread fewer than cores can
be much faster. Prints the medians per setting; raw llama-cpp-python, no joulebot in the loop.

    python bench/threads.py --reps 5 --tokens 32
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

from llama_cpp import Llama

from joulebot.models import build_catalog


def tokens_per_s(llm: Llama, tokens: int) -> float:
    t0 = time.perf_counter()
    out = llm.create_chat_completion(
        messages=[{"role": "user", "content": "Write a short story about a lighthouse."}], max_tokens=tokens, seed=0
    )
    return out["usage"]["completion_tokens"] / (time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--tokens", type=int, default=32)
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    path = str(build_catalog(9.0).resolve("smollm2-135m").gguf.path())
    settings = sorted({cores, max(1, cores - 1)}, reverse=True)
    models = {n: Llama(model_path=path, n_ctx=2048, n_threads=n, seed=0, verbose=False) for n in settings}
    rates: dict[int, list[float]] = {n: [] for n in settings}
    for n in settings:  # warm
        tokens_per_s(models[n], 4)
    for _ in range(args.reps):
        for n in settings:
            rates[n].append(tokens_per_s(models[n], args.tokens))
    load = os.getloadavg()
    print(f"load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f} on {cores} CPUs;", end=" ")
    print(f"{args.reps} reps × {args.tokens} tokens")
    for n in settings:
        got = rates[n]
        print(f"  {n} threads: median {statistics.median(got):6.1f} tokens/s (min {min(got):.1f}, max {max(got):.1f})")
    if len(settings) == 2:
        ratio = statistics.median(rates[settings[1]]) / statistics.median(rates[settings[0]])
        print(f"  cores − 1 vs cores: {ratio:.2f}×")


if __name__ == "__main__":
    main()
