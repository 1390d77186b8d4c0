"""The MCP39F511N driver against a simulated meter on a pseudo-terminal.

The simulator (joulebot/metering/mcp39f511n_sim.py) is written from the datasheet and
shares no constant with the driver: its register map, byte values and scaling are its own.
"""

from __future__ import annotations

import ast
import math
import os
import time
from pathlib import Path

import pytest

from joulebot.metering.mcp39f511n import (
    MCP39F511N,
    McpMeter,
    MeterProtocolError,
    checksum,
    read_frame,
    write_frame,
)
from joulebot.metering.mcp39f511n_sim import SimulatedMCP39F511N, Steps
from joulebot.metering.sampling import BlockAverages, MeterSetupRefused, MeterUnavailable, integrate

pytestmark = pytest.mark.unit  # nothing here starts a process or opens a socket

IDLE_W, BUSY_W = 60.0, 150.0


@pytest.fixture
def sim():
    meter = SimulatedMCP39F511N(power_w=123.45)
    yield meter
    meter.close()


def test_the_simulator_shares_nothing_with_the_driver():
    source = Path(__file__).parents[1] / "joulebot" / "metering" / "mcp39f511n_sim.py"
    imported = {node.module for node in ast.walk(ast.parse(source.read_text())) if isinstance(node, ast.ImportFrom)} | {
        alias.name
        for node in ast.walk(ast.parse(source.read_text()))
        if isinstance(node, ast.Import)
        for alias in node.names
    }
    assert not {m for m in imported if m and m.startswith("joulebot")}, imported


def test_frames_match_the_datasheet():
    assert read_frame(0x0016, 8) == bytes.fromhex("A5 08 41 00 16 4E 08 5A")
    assert write_frame(0x00A8, bytes([0x01, 0x00])) == bytes.fromhex("A5 0A 41 00 A8 4D 02 01 00 E8")
    frame = write_frame(0x00A8, bytes([0x01, 0x00]))
    assert frame[:2] == bytes([0xA5, len(frame)]) and frame[-1] == checksum(frame[:-1])


def test_reads_power_and_each_channels_own_range():
    with SimulatedMCP39F511N(power_w=123.45, channel2_w=7.0, channel2_range=6) as sim:
        driver = MCP39F511N(sim.port, timeout_s=0.3)
        assert driver.ranges(1) == (18, 12, 19)
        assert driver.ranges(2) == (18, 12, 6)
        time.sleep(sim.interval_s * 2)  # the power register holds the last *completed* interval
        ch1, ch2 = driver.active_power_raw()
        assert ch1 == 12345  # 10 mW per LSB at range 19
        assert ch2 == round(7.0 / (0.01 / 2**13))  # range 6: 2^13 times finer
        assert sim.bad_frames == 0
        driver.close()


def test_write_then_read_back(sim):
    driver = MCP39F511N(sim.port, timeout_s=0.3)
    driver.set_accumulation_n(2)
    assert driver.accumulation_n() == 2 and sim.accumulation_n == 2
    assert driver.read(0x00A8, 2) == bytes([0x02, 0x00])
    driver.close()


def test_the_meter_sets_the_accumulation_interval_and_says_so(sim):
    assert sim.accumulation_n == 4, "factory value"
    meter = McpMeter(sim.port, timeout_s=0.3)
    assert sim.accumulation_n == 1 and (0x00A8, bytes([1, 0])) in sim.writes
    assert "2^1 mains cycles = 40 ms at 50 Hz (set by joulebot)" in meter.describe()
    time.sleep(0.1)
    reading = meter.start().stop()
    assert "2^1 mains cycles = 40 ms" in reading.method and reading.update_s == pytest.approx(0.04)


def test_keep_reads_the_interval_as_found(sim):
    meter = McpMeter(sim.port, timeout_s=0.3, accumulation_n=None, mains_hz=60.0)
    assert sim.writes == [] and meter.setup.accumulation_n == 4
    assert "2^4 mains cycles = 267 ms at 60 Hz (as found on the meter)" in meter.describe()


@pytest.mark.parametrize(("power_range", "watts"), [(19, 87.5), (6, 87.5)])
def test_meter_scales_by_the_range_register(power_range, watts):
    with SimulatedMCP39F511N(power_w=watts, power_range=power_range) as sim:
        meter = McpMeter(sim.port, channel=1, timeout_s=0.3)
        time.sleep(0.1)
        assert meter.power_w() == pytest.approx(watts, abs=2e-6 if power_range == 6 else 0.01)


def test_channel_two_is_scaled_by_its_own_range():
    with SimulatedMCP39F511N(power_w=50.0, channel2_w=20.0, power_range=19, channel2_range=6) as sim:
        meter = McpMeter(sim.port, channel=2, timeout_s=0.3)
        time.sleep(0.1)
        assert meter.power_w() == pytest.approx(20.0, abs=1e-5)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"power_range": 12}, r"channel 1: power range 12 is not one joulebot knows how to scale.*refusing to guess"),
        ({"voltage_range": 17}, r"voltage/current range 17/12, not the 18/12 joulebot can scale"),
    ],
)
def test_unknown_ranges_are_refused_not_guessed(kwargs, message):
    with SimulatedMCP39F511N(**kwargs) as sim, pytest.raises(MeterSetupRefused, match=message):
        McpMeter(sim.port, timeout_s=0.3)


def test_a_meter_that_does_not_answer_its_setup_is_refused(sim):
    sim.faults.extend(["nak"] * 10)
    with pytest.raises(MeterSetupRefused, match="range and averaging interval could not be read or set"):
        McpMeter(sim.port, timeout_s=0.2, retries=1)


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        ("bad_checksum", "bad checksum in the meter's answer"),
        ("nak", "the meter answered NAK"),
        ("checksum_fail", "the meter rejected our frame's checksum"),
        ("silence", "no answer within 0.2 s"),
        ("short", "short read"),
        ("garbage", "unexpected answer byte 0x42"),
    ],
)
def test_each_fault_is_named(sim, fault, message):
    driver = MCP39F511N(sim.port, timeout_s=0.2)
    time.sleep(sim.interval_s * 2)
    sim.faults.append(fault)
    with pytest.raises(MeterProtocolError, match=message):
        driver.active_power_raw()
    time.sleep(0.25)  # let any late bytes of the faulty answer arrive and be flushed
    assert driver.active_power_raw()[0] == 12345, "the next exchange works again"
    driver.close()


def test_a_transient_fault_is_retried_within_the_window(sim):
    meter = McpMeter(sim.port, interval_s=0.05, retries=2, timeout_s=0.2)
    time.sleep(0.1)
    sim.faults.extend(["nak", "bad_checksum"])
    window = meter.start()
    time.sleep(0.5)
    reading = window.stop()
    assert reading.error is None and reading.joules == pytest.approx(123.45 * reading.seconds, rel=1e-3)


def test_persistent_faults_make_the_reading_unavailable_with_the_reason(sim):
    meter = McpMeter(sim.port, interval_s=0.05, retries=1, timeout_s=0.2)
    window = meter.start()
    time.sleep(0.2)
    sim.faults.extend(["nak"] * 10)
    time.sleep(0.4)
    reading = window.stop()
    assert reading.joules is None
    assert "the meter answered NAK (after 2 tries)" in reading.error


def test_a_port_that_vanishes_mid_window(sim):
    meter = McpMeter(sim.port, interval_s=0.05, retries=1, timeout_s=0.2)
    window = meter.start()
    time.sleep(0.2)
    sim.faults.append("vanish")
    time.sleep(0.6)
    reading = window.stop()
    assert reading.joules is None
    assert sim.port in reading.error


def test_a_vanished_port_closes_its_descriptors_once(sim, tmp_path):
    meter = McpMeter(sim.port, retries=1, timeout_s=0.2)
    sim.faults.append("vanish")
    with pytest.raises(MeterUnavailable):
        meter.power_w()
    # the numbers the simulator closed are given to the next files opened (in any thread of the process):
    # closing them again at the end would close those files under their owners
    opened = [os.open(tmp_path / f"file-{i}", os.O_CREAT | os.O_RDWR) for i in range(8)]
    try:
        sim.close()
        for fd in opened:
            os.fstat(fd)  # raises EBADF if the simulator closed it
    finally:
        for fd in opened:
            os.close(fd)


def test_after_a_power_cycle_the_interval_is_set_again(sim):
    meter = McpMeter(sim.port, retries=3, timeout_s=0.2)
    sim.replug()  # RAM settings lost: N back to 4
    assert sim.accumulation_n == 4
    time.sleep(0.1)
    meter.power_w()  # the port error, the reopen, the checks, the read
    assert sim.accumulation_n == 1, "set again at the reopen"
    reading = meter.start().stop()
    assert reading.error is None


def test_a_range_that_changed_under_a_running_worker_is_refused(sim):
    meter = McpMeter(sim.port, retries=3, timeout_s=0.2)
    sim.replug(power_range=6)
    time.sleep(0.1)
    with pytest.raises(MeterUnavailable, match=r"changed while the worker ran \(was: .*power range 19; now: .*6\)"):
        meter.power_w()
    reading = meter.start().stop()
    assert reading.joules is None and "restart the worker" in reading.error


def test_a_channel_two_meter_checks_channel_two_after_a_reopen():
    with SimulatedMCP39F511N(power_w=50.0, channel2_w=20.0) as sim:
        meter = McpMeter(sim.port, channel=2, retries=3, timeout_s=0.2)
        sim.replug(power_range=6, channel=1)  # channel 1 changed: not ours
        time.sleep(0.1)
        assert meter.power_w() == pytest.approx(20.0)
        sim.replug(power_range=6, channel=2)
        with pytest.raises(MeterUnavailable, match="channel 2 changed"):
            meter.power_w()


def test_integration_of_a_step():
    samples = [(0.0, 100.0), (1.0, 100.0), (1.0001, 200.0), (2.0, 200.0)]
    assert integrate(samples, 0.0, 2.0) == pytest.approx(300.0, rel=1e-3)
    # samples are held constant out to the window's edges
    assert integrate([(0.5, 10.0), (1.5, 10.0)], 0.0, 2.0) == pytest.approx(20.0)


def measure_pulse(
    sim: SimulatedMCP39F511N, meter: McpMeter, seconds: float, tries: int = 3
) -> tuple[float, float, float, float]:
    """The real case: the box idles, the answer starts with the window and ends with it.

    A window whose sampler a loaded machine held up for most of it has no figure, by design (tested
    below): the pulse is then measured again, up to `tries` times. Returns (measured J, uncertainty J,
    old-style J, true J) of the first window with a figure."""
    errors = []
    for _ in range(tries):
        settle = 3 * sim.interval_s + 0.1
        begin = sim.now() + settle
        sim.loads[1].profile = Steps(IDLE_W, [(begin + 0.005, BUSY_W), (begin + seconds, IDLE_W)])
        time.sleep(max(0.0, begin - sim.now()))
        window = meter.start()
        time.sleep(max(0.0, seconds - (time.perf_counter() - window.start)))
        reading = window.stop()
        if reading.joules is not None and reading.uncertainty_j is not None:
            truth = sim.true_energy(window.start, window.end)
            return reading.joules, reading.uncertainty_j, window.old_style_joules(), truth
        errors.append(reading.error)
    pytest.fail(f"no figure in {tries} windows: {errors}")


@pytest.mark.parametrize("seconds", [0.2, 0.3, 0.5, 1.0, 2.0, 5.0])
def test_a_load_step_of_known_energy_lies_inside_the_reported_band(seconds):
    with SimulatedMCP39F511N(power_w=IDLE_W, seed=int(seconds * 10)) as sim:
        meter = McpMeter(sim.port, timeout_s=0.3)  # sets N = 1: 40 ms at 50 Hz
        measured, uncertainty, old, truth = measure_pulse(sim, meter, seconds)
    assert abs(measured - truth) <= uncertainty, (measured, uncertainty, truth)
    assert abs(measured - truth) < abs(old - truth) + 0.5, "no worse than stamping samples at read time"
    if seconds >= 0.3:
        assert uncertainty < 0.3 * measured, "an honest band, not a vacuous one"


@pytest.mark.parametrize("seconds", [0.2, 1.0])
def test_the_factory_interval_is_accounted_for_too(seconds):
    """N = 4 (320 ms), read as found: the old driver lost the lagging rise; the band must still hold the truth."""
    with SimulatedMCP39F511N(power_w=IDLE_W, seed=7) as sim:
        meter = McpMeter(sim.port, timeout_s=0.3, accumulation_n=None)
        measured, uncertainty, old, truth = measure_pulse(sim, meter, seconds)
    assert abs(measured - truth) <= uncertainty, (measured, uncertainty, truth)
    assert (old - truth) / truth < -0.1, "stamping at read time loses the lag (what this change fixes)"
    assert abs(measured - truth) < abs(old - truth) / 2


def register_reads(period: float, phase: float, start: float, stop: float, read_at: list[float]) -> list:
    """What a chip averaging over `period` shows at each read time, for a 60 → 150 → 60 W pulse."""

    def energy(t0: float, t1: float) -> float:
        busy = max(0.0, min(t1, stop) - max(t0, start))
        return IDLE_W * (t1 - t0) + (BUSY_W - IDLE_W) * busy

    def shown(t: float) -> float:
        begin = phase + (math.floor((t - phase) / period) - 1) * period  # the last completed interval
        return round(energy(begin, begin + period) / period, 2)

    return [(t, shown(t)) for t in read_at]


@pytest.mark.parametrize("stall_at", [0.0, 0.1, 0.25, 0.45])
def test_a_sampler_held_up_widens_the_band_instead_of_missing_the_truth(stall_at):
    period, start, stop = 0.04, 1.0, 1.5
    times = [start + 0.001 + 0.01 * k for k in range(70)]
    times = [t for t in times if not start + stall_at < t < start + stall_at + 0.15]  # 150 ms without a read
    samples = register_reads(period, 0.013, start, stop, times)
    account = BlockAverages(period).account(samples, start, stop)
    truth = BUSY_W * (stop - start)
    assert abs(account.joules - truth) <= account.uncertainty_j + 0.005 * truth
    assert 0.05 < account.blind_s <= 0.16  # the part of the stall inside the window (shifted by one interval)


def test_a_window_the_sampler_mostly_missed_has_no_figure():
    with SimulatedMCP39F511N(power_w=80.0) as sim:
        meter = McpMeter(sim.port, timeout_s=0.3)
        window = meter.start()
        window._stop.set()  # the sampling thread stops reading: as if starved for the whole window
        time.sleep(0.3)
        window._stop.clear()
        reading = window.stop()
    assert reading.joules is None and reading.error.startswith("read too rarely: the sampler was held up for")
