"""Wall-meter accuracy on a load step of known energy, and sampler overhead, against the simulated MCP39F511N.

Accuracy: the simulator idles at 60 W and steps to 150 W when a window starts, back to
60 W when it ends (an answer on a box that idled before it). Its power register averages
over 2^N mains cycles and lags like the chip. For each window length the script prints
the driver's figure against the exact energy: the driver as it is (each value put back
on the interval it averages, sampling until the window's end came out) and the old
driver's way (samples stamped at read time, trapezoids over the window), computed from
the same samples; and the reported ± band, and whether the truth lay inside it.
Overhead: CPU time of the sampling thread per second of window. Prints figures; asserts nothing.

    python bench/meter_accuracy.py [--quick]
"""

from __future__ import annotations

import argparse
import signal
import statistics
import subprocess
import sys
import time

from joulebot.metering.mcp39f511n import McpMeter
from joulebot.metering.mcp39f511n_sim import SimulatedMCP39F511N, Steps

IDLE_W, BUSY_W = 60.0, 150.0


def pulse(sim: SimulatedMCP39F511N, meter: McpMeter, seconds: float) -> tuple[float, float, float, float]:
    """(new J, ± J, old-way J, true J) for one window that starts and ends with the load."""
    begin = sim.now() + 3 * sim.interval_s + 0.1
    sim.loads[1].profile = Steps(IDLE_W, [(begin, BUSY_W), (begin + seconds, IDLE_W)])
    time.sleep(max(0.0, begin - sim.now()))
    window = meter.start()
    time.sleep(max(0.0, seconds - (time.perf_counter() - window.start)))
    reading = window.stop()
    return reading.joules, reading.uncertainty_j, window.old_style_joules(), sim.true_energy(window.start, window.end)


def accuracy(windows: list[float], accumulation_n: int | None, repeats: int) -> None:
    label = "N=1 set (40 ms)" if accumulation_n == 1 else "N=4 factory, read as found (320 ms)"
    print(f"\n{label}: {IDLE_W:g} W idle, {BUSY_W:g} W during the window; {repeats} windows each")
    print("window   new error (mean, worst)   old error (mean, worst)   band ±     truth in band")
    with SimulatedMCP39F511N(power_w=IDLE_W) as sim:
        meter = McpMeter(sim.port, timeout_s=0.5, accumulation_n=accumulation_n)
        for seconds in windows:
            new, old, band, inside = [], [], [], 0
            for _ in range(repeats):
                joules, plus_minus, old_j, truth = pulse(sim, meter, seconds)
                new.append((joules - truth) / truth * 100)
                old.append((old_j - truth) / truth * 100)
                band.append(plus_minus / joules * 100)
                inside += abs(joules - truth) <= plus_minus
            worst_new, worst_old = max(new, key=abs), max(old, key=abs)
            print(
                f"{seconds:5.1f} s  {statistics.fmean(new):+6.2f} % {worst_new:+7.2f} %"
                f"        {statistics.fmean(old):+6.2f} % {worst_old:+7.2f} %"
                f"       {statistics.fmean(band):5.1f} %    {inside}/{repeats}"
            )


def overhead(seconds: float) -> None:
    """The simulator runs in its own process here, as a real meter would be outside ours."""
    sim = subprocess.Popen(
        [sys.executable, "-m", "joulebot", "meter", "simulate", "--watts", "100"], stdout=subprocess.PIPE, text=True
    )
    try:
        port = sim.stdout.readline().split(" at ")[1].split(" ")[0]  # type: ignore[union-attr]
        meter = McpMeter(port, timeout_s=0.5)  # polls 4 times per 40 ms interval
        window = meter.start()
        time.sleep(seconds)
        reading = window.stop()
    finally:
        sim.send_signal(signal.SIGINT)
        sim.wait(10)
    share = window.thread_cpu_s / reading.seconds * 100
    print(
        f"sampler at {1 / window.interval_s:4.0f} Hz: {window.thread_cpu_s * 1000:6.1f} ms CPU"
        f" over {reading.seconds:.1f} s = {share:.3f} % of one core ({reading.samples} samples)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer windows of each length")
    args = parser.parse_args()
    windows = [0.2, 0.5, 1.0, 2.0, 5.0]
    repeats = 2 if args.quick else 5
    accuracy(windows, 1, repeats)
    accuracy(windows, None, repeats)
    overhead(5.0 if args.quick else 10.0)


if __name__ == "__main__":
    main()
