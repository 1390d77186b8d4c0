"""The MCP39F511N driver against a simulated meter on a pseudo-terminal."""

from __future__ import annotations

import time

import pytest

from joulebot.metering.mcp39f511n import (
    MCP39F511N,
    McpMeter,
    MeterProtocolError,
    checksum,
    read_frame,
    write_frame,
)
from joulebot.metering.mcp39f511n_sim import SimulatedMCP39F511N
from joulebot.metering.sampling import MeterUnavailable, integrate


@pytest.fixture
def sim():
    meter = SimulatedMCP39F511N(power_w=123.45)
    yield meter
    meter.close()


def test_frames_match_the_datasheet():
    assert read_frame(0x0016, 8) == bytes.fromhex("A5 08 41 00 16 4E 08 5A")
    frame = write_frame(0x00A8, bytes([0x01, 0x00]))
    assert frame[:2] == bytes([0xA5, len(frame)]) and frame[-1] == checksum(frame[:-1])


def test_reads_power_and_range(sim):
    driver = MCP39F511N(sim.port, timeout_s=0.3)
    assert driver.power_range() == 19
    ch1, ch2 = driver.active_power_raw()
    assert ch1 == 12345 and ch2 == 0  # 10 mW per LSB at range 19
    assert sim.frames_seen == 2 and sim.bad_frames == 0
    driver.close()


def test_write_then_read_back(sim):
    driver = MCP39F511N(sim.port, timeout_s=0.3)
    driver.write(0x00A8, bytes([0x01, 0x00]))
    assert driver.read(0x00A8, 2) == bytes([0x01, 0x00])
    driver.close()


@pytest.mark.parametrize(("power_range", "watts"), [(19, 87.5), (6, 87.5)])
def test_meter_scales_by_the_range_register(power_range, watts):
    with SimulatedMCP39F511N(power_w=watts, power_range=power_range) as sim:
        meter = McpMeter(sim.port, channel=1, timeout_s=0.3)
        assert meter.power_w() == pytest.approx(watts, abs=2e-6 if power_range == 6 else 0.01)


def test_unknown_range_is_refused_not_guessed():
    with (
        SimulatedMCP39F511N(power_range=12) as sim,
        pytest.raises(MeterUnavailable, match=r"range 12.*refusing to guess"),
    ):
        McpMeter(sim.port, timeout_s=0.3)


def test_channel_two():
    with SimulatedMCP39F511N(power_w=50.0, channel2_w=20.0) as sim:
        assert McpMeter(sim.port, channel=2, timeout_s=0.3).power_w() == pytest.approx(20.0)


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
    sim.faults.append(fault)
    with pytest.raises(MeterProtocolError, match=message):
        driver.active_power_raw()
    time.sleep(0.25)  # let any late bytes of the faulty answer arrive and be flushed
    assert driver.active_power_raw()[0] == 12345, "the next exchange works again"
    driver.close()


def test_a_transient_fault_is_retried_within_the_window(sim):
    meter = McpMeter(sim.port, interval_s=0.05, retries=2, timeout_s=0.2)
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


def test_integration_of_a_step():
    samples = [(0.0, 100.0), (1.0, 100.0), (1.0001, 200.0), (2.0, 200.0)]
    assert integrate(samples, 0.0, 2.0) == pytest.approx(300.0, rel=1e-3)
    # samples are held constant out to the window's edges
    assert integrate([(0.5, 10.0), (1.5, 10.0)], 0.0, 2.0) == pytest.approx(20.0)


def test_sampled_energy_matches_a_known_trace():
    # 100 W, then 200 W after 0.6 s: over a 1.2 s window that is ~180 J
    with SimulatedMCP39F511N(power_w=lambda t: 100.0 if t < 0.6 else 200.0) as sim:
        meter = McpMeter(sim.port, interval_s=0.02, timeout_s=0.3)
        start = time.perf_counter()
        window = meter.start()
        offset = start - sim.t0
        time.sleep(1.2)
        reading = window.stop()
    exact = 100.0 * max(0.0, 0.6 - offset) + 200.0 * (reading.seconds - max(0.0, 0.6 - offset))
    assert reading.joules == pytest.approx(exact, rel=0.03)
    assert reading.samples > 30
