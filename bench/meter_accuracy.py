"""Wall-meter integration accuracy and sampler overhead, against the simulated MCP39F511N.

Accuracy: the simulator replays a power trace with steps and ramps; the meter's
integrated energy over windows of 2-30 s is compared with the trace's exact
integral over the same window. Overhead: CPU time of the sampling thread per
second of window. Prints figures; asserts nothing.

    python bench/meter_accuracy.py [--quick]
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import time

from joulebot.metering.mcp39f511n import McpMeter
from joulebot.metering.mcp39f511n_sim import SimulatedMCP39F511N


def trace(t: float) -> float:
    """120 W base, an 80 W step on for 0.7 s every 1.9 s, a 0-40 W sawtooth ramp every 3.3 s."""
    step = 80.0 if (t % 1.9) < 0.7 else 0.0
    ramp = 40.0 * ((t % 3.3) / 3.3)
    return 120.0 + step + ramp


def exact_energy(start: float, stop: float, dt: float = 1e-4) -> float:
    n = max(1, round((stop - start) / dt))
    h = (stop - start) / n
    return sum(trace(start + (i + 0.5) * h) for i in range(n)) * h  # midpoint rule, fine grid


def accuracy(windows: list[float], interval_s: float) -> None:
    with SimulatedMCP39F511N(power_w=trace) as sim:
        meter = McpMeter(sim.port, interval_s=interval_s, timeout_s=0.5)
        for seconds in windows:
            time.sleep(0.37)  # start at another phase of the trace each time
            window = meter.start()
            start = window.start - sim.t0
            time.sleep(seconds)
            reading = window.stop()
            exact = exact_energy(start, start + reading.seconds)
            error = (reading.joules - exact) / exact * 100
            print(
                f"window {reading.seconds:5.1f} s  interval {interval_s * 1000:3.0f} ms  samples {reading.samples:4d}"
                f"  measured {reading.joules:9.2f} J  exact {exact:9.2f} J  error {error:+6.2f} %"
            )


def overhead(interval_s: float, seconds: float) -> None:
    """The simulator runs in its own process here, as a real meter would be outside ours."""
    sim = subprocess.Popen(
        [sys.executable, "-m", "joulebot", "meter", "simulate", "--watts", "100"], stdout=subprocess.PIPE, text=True
    )
    try:
        port = sim.stdout.readline().split(" at ")[1].split(" ")[0]  # type: ignore[union-attr]
        meter = McpMeter(port, interval_s=interval_s, timeout_s=0.5)
        window = meter.start()
        time.sleep(seconds)
        reading = window.stop()
    finally:
        sim.send_signal(signal.SIGINT)
        sim.wait(10)
    share = window.thread_cpu_s / reading.seconds * 100
    print(
        f"sampler at {1 / interval_s:4.0f} Hz: {window.thread_cpu_s * 1000:6.1f} ms CPU"
        f" over {reading.seconds:.1f} s = {share:.3f} % of one core ({reading.samples} samples)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="shorter windows only")
    args = parser.parse_args()
    windows = [2.0, 2.0, 5.0] if args.quick else [2.0, 2.0, 2.0, 5.0, 10.0, 30.0]
    accuracy(windows, 0.1)
    accuracy([2.0, 5.0], 0.02)
    for interval in (0.1, 0.01):
        overhead(interval, 5.0 if args.quick else 10.0)


if __name__ == "__main__":
    main()
