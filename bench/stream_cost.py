"""What streaming the answer costs on the metered box. Prints figures; asserts nothing.

The worker pushes the answer so far to a Redis stream (at most every STREAM_INTERVAL_S) from
inside the measured window, so its cost lands on the box's energy bill. This runs the
same generation (SmolLM2 through llama.cpp, fixed seed: the same tokens every time)
with and without publishing, interleaved, each in the box's measured window, against a
real Redis, and prints both energies, their ratio, this process's CPU time with and
without, and what the publishing itself took: on the generating thread (the sink's work:
building the text from tokens, dropping reasoning, handing it over) and on the stream's
own thread (the Redis XADD: its wall time, and the CPU time of that thread). On a shared
machine the energy of the whole box is noisy (other processes' load lands in it); the CPU
time of the generating process and the publishing's own times are the sensitive figures.
Run from the repository root:

    python bench/stream_cost.py --n 8 [--threads 1] [--interval 0.05]
"""

from __future__ import annotations

import argparse
import statistics
import time
import uuid
from collections.abc import Callable

import redis

from joulebot.config import Settings
from joulebot.metering.answer_energy import MeasurementBox
from joulebot.metering.detect import detect_meters
from joulebot.models.catalog import static_entries
from joulebot.models.llamacpp_runner import LlamaCppRunner
from joulebot.models.runner import TextSink
from joulebot.queueing.answer_stream import AnswerStream

PROMPT = [
    {"role": "system", "content": "You are a helpful assistant."},
    {"role": "user", "content": "Write a short story about a lighthouse keeper and a storm."},
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=8, help="answers per mode")
    parser.add_argument("--max-tokens", type=int, default=256)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/15")
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="llama.cpp threads (default LLAMA_THREADS); on a busy machine 1 "
        "keeps spinning threads out of the CPU time",
    )
    parser.add_argument("--interval", type=float, default=None, help="seconds between publications (STREAM_INTERVAL_S)")
    args = parser.parse_args()

    settings = Settings(_env_file=None)
    entry = next(e for e in static_entries() if e.runner == "llamacpp")
    runner = LlamaCppRunner(threads=args.threads or settings.llama_threads)
    runner.load(entry)
    box = MeasurementBox(detect_meters(settings).meters, settings.sysfs_root)
    box.measure_idle(settings.idle_baseline_s)
    connection = redis.Redis.from_url(args.redis)
    streams: list[AnswerStream] = []
    publishing = {"seconds": 0.0, "cpu_s": 0.0, "count": 0, "write_s": 0.0, "write_cpu_s": 0.0, "writes": 0}

    def clocked(call: Callable[[], None], wall: str, cpu: str, count: str) -> None:
        """`call()`, its wall and its thread's CPU time added to `publishing`."""
        t0, cpu0 = time.perf_counter(), time.thread_time()
        call()
        publishing[cpu] += time.thread_time() - cpu0
        publishing[wall] += time.perf_counter() - t0
        publishing[count] += 1

    class TimedSink(TextSink):
        """The worker's sink, timing everything it does (the runner's cheap `due()` checks aside)."""

        def put(self, text: str) -> None:
            clocked(lambda: super(TimedSink, self).put(text), "seconds", "cpu_s", "count")

    class TimedStream(AnswerStream):
        """The worker's stream, timing each write on its thread (wall and that thread's CPU)."""

        def write(self, answer: str) -> None:
            clocked(lambda: super(TimedStream, self).write(answer), "write_s", "write_cpu_s", "writes")

    def publisher() -> TimedSink:
        """The worker's publisher for one answer (a stream of its own), timed."""
        streams.append(TimedStream(connection, f"bench-stream-{uuid.uuid4().hex}", args.max_tokens, 60))
        return TimedSink(streams[-1].publish, args.interval or settings.stream_interval_s)

    runner.generate(entry, PROMPT, args.max_tokens)  # warm caches
    energy: dict[str, list[float]] = {"off": [], "on": []}
    seconds: dict[str, list[float]] = {"off": [], "on": []}
    cpu: dict[str, list[float]] = {"off": [], "on": []}
    tokens = set()
    source = ""
    for i in range(args.n):
        for mode in ("off", "on") if i % 2 == 0 else ("on", "off"):
            sink = publisher() if mode == "on" else None
            cpu0 = time.process_time()
            generation, measured = box.measure(lambda sink=sink: runner.generate(entry, PROMPT, args.max_tokens, sink))
            if sink is not None:
                streams[-1].close()  # as the job's end does
            cpu[mode].append(time.process_time() - cpu0)
            tokens.add(generation.completion_tokens)
            source = measured.machine.source if measured.machine.measured else f"estimate ({measured.machine.method})"
            if measured.total_j is not None:
                energy[mode].append(measured.total_j)
            seconds[mode].append(generation.seconds)
    connection.delete(*(stream.key for stream in streams))

    def line(mode: str) -> str:
        e, s = energy[mode], seconds[mode]
        spread = statistics.stdev(e) if len(e) > 1 else 0.0
        return (
            f"{statistics.fmean(e):8.2f} J ± {spread:.2f} (total, n={len(e)}) · {statistics.fmean(s):.3f} s wall"
            f" · {statistics.fmean(cpu[mode]):.3f} s CPU of this process"
        )

    print(f"model {entry.name}, {sorted(tokens)} completion tokens, {runner.threads} threads, meter: {source}")
    print(f"no streaming (baseline) {line('off')}")
    print(f"streaming every {args.interval or settings.stream_interval_s:g} s  {line('on')}")
    ratio = statistics.fmean(energy["on"]) / statistics.fmean(energy["off"])
    print(f"energy ratio streaming / baseline: {ratio:.4f} ({(ratio - 1) * 100:+.2f} %, within the noise above)")
    cpu_ratio = statistics.fmean(cpu["on"]) / statistics.fmean(cpu["off"])
    print(f"CPU time ratio streaming / baseline: {cpu_ratio:.4f} ({(cpu_ratio - 1) * 100:+.2f} %)")
    wall, cpu_on = sum(seconds["on"]), sum(cpu["on"])

    def share(key: str) -> str:
        return f"{publishing[key] * 1000:.1f} ms = {publishing[key] / wall * 100:.3f} % of the streamed generations'"

    print(
        f"publishing, as a share of the streamed generations' wall time ({wall:.2f} s) and CPU time ({cpu_on:.2f} s):"
    )
    print(
        f"  on the generating thread, {publishing['count']} publications: wall {share('seconds')} wall;"
        f" CPU {publishing['cpu_s'] * 1000:.1f} ms = {publishing['cpu_s'] / cpu_on * 100:.3f} % of their CPU time"
    )
    print(
        f"  on the stream's thread, {publishing['writes']} writes: wall {share('write_s')} wall (not waited for);"
        f" CPU {publishing['write_cpu_s'] * 1000:.1f} ms = {publishing['write_cpu_s'] / cpu_on * 100:.3f} %"
        " of their CPU time"
    )


if __name__ == "__main__":
    main()
