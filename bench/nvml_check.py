"""The NVML meter on a real NVIDIA GPU: joulebot's windows against an independent reference.

    python bench/nvml_check.py [--lengths 0.25 0.5 1 2 5] [--repeats 3]

Needs a GPU, nvidia-ml-py and PyTorch (the load: bf16 matrix products in a
child process, so the load never competes with the samplers for the GIL).

For each window length and load profile (idle; steady load; load starting half
way through — the case a 1-second average gets wrong), one window is measured by

- joulebot's counter path (`NvmlMeter`: energy counter read at the edges, with its band),
- joulebot's polled path (the same meter forced onto the instant power field at
  100 Hz: what a GPU without the counter gets),
- `nvmlDeviceGetPowerUsage` × duration (what joulebot refuses to use),

against a reference this script takes on its own: the instant power field read
at ~1 kHz in a thread of its own and integrated over the same span. It prints
each method's error against the reference and whether the reference lies inside
the band joulebot reports, then the counter's update period and read costs.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import subprocess
import sys
import threading
import time

import pynvml

from joulebot.metering.nvml import NvmlMeter

LOAD = r"""
import sys, time, torch
a = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
b = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
for _ in range(3):
    a @ b
torch.cuda.synchronize()
print("ready", flush=True)
for line in sys.stdin:
    seconds = float(line)
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        for _ in range(4):
            a @ b
        torch.cuda.synchronize()
    print("done", flush=True)
"""


class Reference(threading.Thread):
    """The instant power field at ~1 kHz, timestamped, for the whole run."""

    def __init__(self, meter: NvmlMeter, handle: object) -> None:
        super().__init__(daemon=True)
        self.handle = handle
        self.watts = lambda: meter._instant_one(handle)  # a read of its own, on its own thread
        self.samples: list[tuple[float, float]] = []
        self.running = True

    def run(self) -> None:
        while self.running:
            self.samples.append((time.perf_counter(), self.watts()))
            time.sleep(0.001)

    def joules(self, t0: float, t1: float) -> float:
        """Trapezoids over [t0, t1], samples linearly interpolated at the ends."""
        points = [(t, w) for t, w in self.samples if t0 <= t <= t1]
        before = [s for s in self.samples if s[0] < t0][-1:]
        after = [s for s in self.samples if s[0] > t1][:1]
        points = before + points + after
        total = 0.0
        for (ta, wa), (tb, wb) in itertools.pairwise(points):
            lo, hi = max(ta, t0), min(tb, t1)
            if hi <= lo:
                continue
            slope = (wb - wa) / (tb - ta)
            w_lo, w_hi = wa + slope * (lo - ta), wa + slope * (hi - ta)
            total += (w_lo + w_hi) / 2 * (hi - lo)
        return total


class Load:
    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", LOAD], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        assert self.proc.stdout is not None and self.proc.stdin is not None
        assert self.proc.stdout.readline().strip() == "ready"

    def go(self, seconds: float) -> None:
        self.proc.stdin.write(f"{seconds}\n")  # type: ignore[union-attr]
        self.proc.stdin.flush()  # type: ignore[union-attr]

    def wait(self) -> None:
        assert self.proc.stdout.readline().strip() == "done"  # type: ignore[union-attr]


def polled_meter() -> NvmlMeter:
    meter = NvmlMeter()
    meter.polled, meter.handles = meter.handles, []  # as if the GPU had no energy counter
    return meter


def one_window(meter: NvmlMeter, reference: Reference, load: Load, profile: str, length: float):
    usage: list[float] = []
    handle = reference.handle
    if profile == "steady":
        load.go(length + 1.0)
        time.sleep(0.5)
    t0 = time.perf_counter()
    window = meter.start()
    usage.append(pynvml.nvmlDeviceGetPowerUsage(handle) / 1000)
    if profile == "step":
        time.sleep(length / 2)
        load.go(length / 2 + 0.5)
        time.sleep(length / 2)
    else:
        time.sleep(length)
    usage.append(pynvml.nvmlDeviceGetPowerUsage(handle) / 1000)
    reading = window.stop()
    t1 = time.perf_counter()
    if profile != "idle":
        load.wait()
    time.sleep(1.0)  # settle to idle before the next window
    return reading, reference.joules(t0, t1), statistics.mean(usage) * (t1 - t0)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lengths", type=float, nargs="+", default=[0.25, 0.5, 1.0, 2.0, 5.0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--burn", type=float, default=0.0, help="only run the load for this many seconds")
    args = parser.parse_args()
    if args.burn:
        load = Load()
        load.go(args.burn)
        load.wait()
        return

    pynvml.nvmlInit()
    handle = pynvml.nvmlDeviceGetHandleByIndex(0)
    print("GPU:", pynvml.nvmlDeviceGetName(handle), "driver", pynvml.nvmlSystemGetDriverVersion())
    counter_meter, polled = NvmlMeter(), polled_meter()
    print("joulebot sees:", counter_meter.describe(), "| forced:", polled.describe())
    reference = Reference(counter_meter, handle)
    reference.start()
    load = Load()
    time.sleep(2.0)

    print("\nwindow  profile  ref J     | counter err  band   inside | polled err  band   inside | PowerUsage err")
    summary: dict[str, list[float]] = {"counter": [], "polled": [], "usage": []}
    inside = {"counter": 0, "polled": 0}
    total = 0
    for length in args.lengths:
        for profile in ("idle", "steady", "step"):
            for _ in range(args.repeats):
                cells = []
                ref = 0.0
                for name, meter in (("counter", counter_meter), ("polled", polled)):
                    reading, ref, usage_j = one_window(meter, reference, load, profile, length)
                    err = (reading.joules or 0.0) / ref - 1
                    band = (reading.uncertainty_j or 0.0) / ref
                    ok = abs((reading.joules or 0.0) - ref) <= (reading.uncertainty_j or 0.0)
                    inside[name] += ok
                    summary[name].append(abs(err))
                    cells.append(f"{err:+8.2%} ±{band:6.1%} {'yes' if ok else 'NO ':>4}")
                summary["usage"].append(abs(usage_j / ref - 1))
                total += 1
                print(
                    f"{length:5.2f} s {profile:7s} {ref:9.1f} | " + " | ".join(cells) + f" | {usage_j / ref - 1:+8.2%}"
                )
    for name in ("counter", "polled", "usage"):
        errs = summary[name]
        print(
            f"{name}: mean |err| {statistics.mean(errs):.2%}, worst {max(errs):.2%}"
            + (f", reference inside the band {inside[name]}/{total}" if name in inside else "")
        )

    # the counter's update period under load, and what each read costs
    load.go(3.0)
    time.sleep(0.3)
    changes, last = [], pynvml.nvmlDeviceGetTotalEnergyConsumption(handle)
    end = time.perf_counter() + 2.0
    reads = 0
    t_read = time.perf_counter()
    while time.perf_counter() < end:
        value = pynvml.nvmlDeviceGetTotalEnergyConsumption(handle)
        reads += 1
        if value != last:
            changes.append(time.perf_counter())
            last = value
    counter_cost = (time.perf_counter() - t_read) / reads
    load.wait()
    gaps = sorted(b - a for a, b in itertools.pairwise(changes))
    if gaps:
        q = statistics.quantiles(gaps, n=10)
        median = statistics.median(gaps)
        print(
            f"counter update period under load: p10 {q[0] * 1000:.0f} ms, median {median * 1000:.0f} ms, "
            f"p90 {q[-1] * 1000:.0f} ms ({len(gaps)} gaps)"
        )
    t = time.perf_counter()
    for _ in range(1000):
        reference.watts()
    instant_ms = time.perf_counter() - t  # 1000 reads: seconds per 1000 = ms per read
    print(f"read cost: energy counter {counter_cost * 1000:.2f} ms, instant field {instant_ms:.3f} ms")
    print(f"reference sampler: {len(reference.samples)} samples")
    reference.running = False
    load.proc.stdin.close()  # type: ignore[union-attr]
    load.proc.wait(timeout=30)


if __name__ == "__main__":
    main()
