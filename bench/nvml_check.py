"""The device check: joulebot's meters on a real NVIDIA GPU machine, against references taken apart,
and the estimate against RAPL where the machine has it. Under five minutes, one table.

Here (where the package index is reachable), once:

    python3 bench/nvml_check.py --prepare-wheels .whl     # joulebot's own needs for the device

On the GPU machine, with `.whl` carried:

    python3 bench/nvml_check.py --wheels .whl [--quick] [--lengths 0.5 2 5] [--repeats 2]

What it does:

1. installs what the machine lacks from the carried wheels (joulebot's meters need pydantic; the
   device image has PyTorch, nvidia-ml-py and psutil) into a folder of its own, nothing else;
2. GPU: a fixed load (bf16 8192² matrix products through PyTorch, in a child process so it never
   competes with the samplers for the GIL), windows of each length idle, steady, and with the load
   starting half-way (the case a 1-second power average gets wrong). Each window is measured by
   joulebot's `NvmlMeter` (energy counter read at the edges, with its band) and by its polled path
   (the instant power field at 100 Hz, what GPUs without the counter get), against two references
   the script takes itself: an independent read of the same energy counter
   (`nvmlDeviceGetTotalEnergyConsumption`, raw, around the window) and the instant power field read
   at ~1 kHz on a thread of its own;
3. CPU: where RAPL's package (and DRAM) counters are readable, the estimate (published figures for
   this CPU and its memory, `joulebot/metering/power_figures.py`) against RAPL over the same
   windows, idle and with every core busy: the same scope (CPU and memory), and whether RAPL lies
   inside the estimate's band;
4. prints one table, and the counter's update period and read costs.

A check that cannot run here (no NVIDIA driver, no RAPL, RAPL readable by root only) says why in
its row instead of stopping the others. `--budget-s` (default 270) stops starting new windows once
spent, so the script ends inside five minutes with what it measured.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import itertools
import multiprocessing
import os
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
NEEDS = ("pydantic", "pydantic-core", "annotated-types", "typing-inspection", "typing-extensions")
SITE = Path("/tmp/joulebot-device-site")
DEVICE_PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64")

LOAD = r"""
import sys, time, torch
a = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
b = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
for _ in range(3):
    a @ b
torch.cuda.synchronize()
print("ready", flush=True)
for line in sys.stdin:
    end = time.perf_counter() + float(line)
    while time.perf_counter() < end:
        for _ in range(4):
            a @ b
        torch.cuda.synchronize()
    print("done", flush=True)
"""


def prepare_wheels(target: Path) -> None:
    """Download, for the device's Python 3.12 on x86-64, the wheels of the versions installed here."""
    target.mkdir(parents=True, exist_ok=True)
    for name in NEEDS:
        version = importlib.metadata.version(name)
        platforms = [arg for p in DEVICE_PLATFORMS for arg in ("--platform", p)]
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--no-deps",
                "--only-binary=:all:",
                "--python-version",
                "3.12",
                "--implementation",
                "cp",
                *platforms,
                "-d",
                str(target),
                f"{name}=={version}",
            ],
            check=True,
        )
    print(f"wheels in {target}: add '/{target.name}/' to .git/info/exclude and carry it to the device")


def bootstrap(wheels: Path | None) -> None:
    """joulebot from this checkout, and what it imports that the machine lacks, from the wheels."""
    sys.path.insert(0, str(ROOT))
    try:
        import pydantic  # noqa: F401
    except ImportError:
        if wheels is None or not any(wheels.glob("*.whl")):
            sys.exit("pydantic is missing here: run with --wheels DIR (made by --prepare-wheels DIR elsewhere)")
        pip = [sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps", "--no-compile"]
        subprocess.run([*pip, "--target", str(SITE), *map(str, sorted(wheels.glob("*.whl")))], check=True)
        sys.path.insert(0, str(SITE))


@dataclass
class Row:
    check: str
    seconds: float
    load: str
    joules: float | None
    band: float | None
    counter_j: float | None = None  # the independent counter read (GPU) or RAPL (CPU)
    instant_j: float | None = None  # the 1 kHz instant-power reference (GPU)
    note: str = ""

    def cells(self) -> str:
        def j(value: float | None) -> str:
            return "–" if value is None else f"{value:9.1f}"

        if self.joules is None:
            return f"{self.check:16s} {'':>6s} {'':7s} | {self.note}"
        ref = self.counter_j if self.counter_j is not None else self.instant_j
        err = "–" if not ref else f"{self.joules / ref - 1:+7.2%}"
        inside = "–" if ref is None or self.band is None else ("yes" if abs(self.joules - ref) <= self.band else "NO")
        band = "–" if self.band is None else f"±{self.band:8.1f}"
        return (
            f"{self.check:16s} {self.seconds:5.2f}s {self.load:7s} | {j(self.joules)} {band} | {j(self.counter_j)}"
            f" {j(self.instant_j)} | {err:>8s} {inside:>4s} {self.note}"
        )


HEADER = (
    f"{'check':16s} {'window':>6s} {'load':7s} | {'joulebot J':>9s} {'band J':>9s} | {'counter J':>9s}"
    f" {'1 kHz J':>9s} | {'error':>8s} {'in':>4s}"
)


class Reference(threading.Thread):
    """The instant power field at ~1 kHz, timestamped, for the whole run."""

    def __init__(self, watts) -> None:
        super().__init__(daemon=True)
        self.watts = watts
        self.samples: list[tuple[float, float]] = []
        self.running = True

    def run(self) -> None:
        while self.running:
            self.samples.append((time.perf_counter(), self.watts()))
            time.sleep(0.001)

    def joules(self, t0: float, t1: float) -> float:
        """Trapezoids over [t0, t1], the samples linearly interpolated at the ends."""
        before = [s for s in self.samples if s[0] < t0][-1:]
        after = [s for s in self.samples if s[0] > t1][:1]
        points = before + [s for s in self.samples if t0 <= s[0] <= t1] + after
        total = 0.0
        for (ta, wa), (tb, wb) in itertools.pairwise(points):
            lo, hi = max(ta, t0), min(tb, t1)
            if hi > lo:
                slope = (wb - wa) / (tb - ta)
                total += (2 * wa + slope * (lo - ta + hi - ta)) / 2 * (hi - lo)
        return total


class GpuLoad:
    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", LOAD], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        assert self.proc.stdout is not None and self.proc.stdout.readline().strip() == "ready"

    def go(self, seconds: float) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(f"{seconds}\n")
        self.proc.stdin.flush()

    def wait(self) -> None:
        assert self.proc.stdout is not None and self.proc.stdout.readline().strip() == "done"

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


def gpu_window(meter: Any, pynvml: Any, handle: Any, ref: Reference, load: GpuLoad, profile: str, length: float):
    """One window of `profile`: joulebot's reading, the raw counter around it (J), the 1 kHz reference (J)."""
    if profile == "steady":
        load.go(length + 1.0)
        time.sleep(0.5)
    raw0 = pynvml.nvmlDeviceGetTotalEnergyConsumption(handle)
    window = meter.start()
    t0 = time.perf_counter()
    if profile == "step":
        time.sleep(length / 2)
        load.go(length / 2 + 0.5)
        time.sleep(length / 2)
    else:
        time.sleep(length)
    t1 = time.perf_counter()
    reading = window.stop()
    raw1 = pynvml.nvmlDeviceGetTotalEnergyConsumption(handle)
    if profile != "idle":
        load.wait()
    time.sleep(1.0)  # back to idle before the next window
    return reading, (raw1 - raw0) / 1000, ref.joules(t0, t1)


def gpu_rows(lengths: list[float], repeats: int, deadline: float) -> list[Row]:
    try:
        import pynvml

        from joulebot.metering.nvml import NvmlMeter

        pynvml.nvmlInit()
        meter = NvmlMeter()
    except Exception as exc:  # no driver, no GPU, no nvidia-ml-py: this check cannot run here
        return [Row("gpu (nvml)", 0, "", None, None, note=f"not run: {type(exc).__name__}: {exc}")]
    handle = pynvml.nvmlDeviceGetHandleByIndex(0)
    print("GPU:", pynvml.nvmlDeviceGetName(handle), "driver", pynvml.nvmlSystemGetDriverVersion())
    polled = NvmlMeter()
    polled.polled, polled.handles = polled.handles, []  # as if the GPU had no energy counter
    print("joulebot sees:", meter.describe(), "| forced:", polled.describe())
    ref = Reference(lambda: meter._instant_one(handle))
    ref.start()
    load = GpuLoad()
    time.sleep(2.0)
    rows = []
    for length in lengths:
        for profile in ("idle", "steady", "step"):
            for _ in range(repeats):
                for name, m in (("nvml counter", meter), ("nvml polled", polled)):
                    if time.perf_counter() + 2 * length + 3 > deadline:
                        rows.append(Row(name, length, profile, None, None, note="skipped: time budget spent"))
                        continue
                    reading, counter_j, instant_j = gpu_window(m, pynvml, handle, ref, load, profile, length)
                    rows.append(Row(name, length, profile, reading.joules, reading.uncertainty_j, counter_j, instant_j))
    counter_period(pynvml, handle, load)
    ref.running = False
    load.close()
    return rows


def counter_period(pynvml: Any, handle: Any, load: GpuLoad) -> None:
    """How often the energy counter moves under load, and what a read of each kind costs."""
    load.go(2.5)
    time.sleep(0.3)
    changes, last, reads = [], pynvml.nvmlDeviceGetTotalEnergyConsumption(handle), 0
    t_read = time.perf_counter()
    while time.perf_counter() < t_read + 1.5:
        value = pynvml.nvmlDeviceGetTotalEnergyConsumption(handle)
        reads += 1
        if value != last:
            changes.append(time.perf_counter())
            last = value
    cost_ms = (time.perf_counter() - t_read) / reads * 1000
    load.wait()
    gaps = sorted(b - a for a, b in itertools.pairwise(changes))
    if len(gaps) >= 2:
        q = statistics.quantiles(gaps, n=10)
        print(
            f"counter update period under load: p10 {q[0] * 1000:.0f} ms, median {statistics.median(gaps) * 1000:.0f}"
            f" ms, p90 {q[-1] * 1000:.0f} ms ({len(gaps)} gaps); a counter read costs {cost_ms:.2f} ms"
        )


def _spin(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def rapl_rows(lengths: list[float], deadline: float, sysfs_root: Path) -> list[Row]:
    from joulebot.metering.base import MeterAbsent
    from joulebot.metering.estimate import EstimateMeter
    from joulebot.metering.power_figures import published
    from joulebot.metering.rapl import RaplMeter

    try:
        rapl = RaplMeter(sysfs_root)
    except (MeterAbsent, OSError) as exc:
        return [Row("estimate v rapl", 0, "", None, None, note=f"not run: {exc}")]
    estimate = EstimateMeter(published())
    print("RAPL:", rapl.describe(), "| estimate:", estimate.describe())
    rows = []
    for busy in (False, True):
        for length in [n for n in lengths if n >= 1.0] or [2.0]:
            if time.perf_counter() + length + 2 > deadline:
                rows.append(Row("estimate v rapl", length, "", None, None, note="skipped: time budget spent"))
                continue
            windows = (rapl.start(), estimate.start())
            if busy:
                with multiprocessing.Pool(os.cpu_count()) as pool:
                    pool.map(_spin, [length] * (os.cpu_count() or 1))
            else:
                time.sleep(length)
            measured, estimated = (w.stop() for w in windows)
            load = "cpu all" if busy else "idle"
            note = f"rapl ± {measured.uncertainty_j:.1f} J, {measured.joules / measured.seconds:.1f} W"
            if not any(d.name == "dram" for d in rapl.domains):
                note += "; no dram domain: RAPL leaves out the memory the estimate counts"
            rows.append(
                Row(
                    "estimate v rapl",
                    length,
                    load,
                    estimated.joules,
                    estimated.uncertainty_j,
                    measured.joules,
                    note=note,
                )
            )
            time.sleep(1.0)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--prepare-wheels", type=Path, help="download the device's wheels into this folder, and stop")
    parser.add_argument("--wheels", type=Path, help="install what is missing from these wheels")
    parser.add_argument("--quick", action="store_true", help="windows of 0.5, 2 and 5 s, once each")
    parser.add_argument("--lengths", type=float, nargs="+", default=[0.5, 1.0, 2.0, 5.0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--budget-s", type=float, default=270.0, help="start no window after this many seconds")
    parser.add_argument("--sysfs-root", type=Path, default=Path("/sys"), help="where RAPL's powercap tree is")
    args = parser.parse_args()
    if args.prepare_wheels:
        prepare_wheels(args.prepare_wheels)
        return
    started = time.perf_counter()
    deadline = started + args.budget_s
    bootstrap(args.wheels)
    lengths, repeats = ([0.5, 2.0, 5.0], 1) if args.quick else (args.lengths, args.repeats)
    rows = gpu_rows(lengths, repeats, deadline) + rapl_rows(lengths, deadline, args.sysfs_root)
    print("\n" + HEADER)
    print("-" * len(HEADER))
    for row in rows:
        print(row.cells())
    for check in sorted({r.check for r in rows if r.joules is not None}):
        done = [r for r in rows if r.check == check and r.joules is not None and r.counter_j]
        errors = [abs(r.joules / r.counter_j - 1) for r in done if r.counter_j]
        inside = sum(abs(r.joules - r.counter_j) <= (r.band or 0) for r in done if r.counter_j is not None)
        if errors:
            mean, worst = statistics.mean(errors), max(errors)
            print(f"{check}: mean |error| {mean:.2%}, worst {worst:.2%}, reference inside band {inside}/{len(done)}")
    print(f"done in {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
