"""The NVML meter against a stand-in for the NVML library (no GPU on the test machines).

The stand-in implements the documented calls joulebot uses, with the behaviour our H200
measurement found: the energy counter (mJ since driver load) moves every ~100 ms; the
instant power field (`NVML_FI_DEV_POWER_INSTANT`, mW) follows the load; a GPU older than
Volta has no counter. The real check on a GPU is `joulebot meter read --source nvml`.
"""

from __future__ import annotations

import math
import sys
import time
import types

import pytest

from joulebot.metering.base import MeterAbsent
from joulebot.metering.doctor import read_for
from joulebot.metering.nvml import NvmlMeter

pytestmark = pytest.mark.unit  # nothing here starts a process or opens a socket


class NVMLError(Exception):
    pass


class FakeGpu:
    def __init__(self, watts, has_counter: bool = True) -> None:
        self.watts, self.has_counter = watts, has_counter
        self.t0 = time.perf_counter()

    def energy_j(self, t: float) -> float:
        """Exact energy since t0 (fine midpoint sum of the profile)."""
        n = max(1, math.ceil((t - self.t0) / 1e-3))
        h = (t - self.t0) / n
        return sum(self.watts(self.t0 + (i + 0.5) * h) for i in range(n)) * h


def fake_pynvml(gpus: list[FakeGpu]) -> types.ModuleType:
    nvml = types.ModuleType("pynvml")
    nvml.NVMLError = NVMLError
    nvml.NVML_SUCCESS, nvml.NVML_ERROR_NOT_SUPPORTED = 0, 3
    nvml.NVML_FI_DEV_POWER_INSTANT = 186
    nvml.NVML_TEMPERATURE_GPU = 0
    (
        nvml.NVML_VALUE_TYPE_DOUBLE,
        nvml.NVML_VALUE_TYPE_UNSIGNED_INT,
        nvml.NVML_VALUE_TYPE_UNSIGNED_LONG,
        nvml.NVML_VALUE_TYPE_UNSIGNED_LONG_LONG,
        nvml.NVML_VALUE_TYPE_SIGNED_LONG_LONG,
    ) = range(5)
    nvml.nvmlInit = lambda: None
    nvml.nvmlDeviceGetCount = lambda: len(gpus)
    nvml.nvmlDeviceGetHandleByIndex = lambda i: gpus[i]
    nvml.nvmlDeviceGetTemperature = lambda gpu, sensor: 41

    def counter(gpu: FakeGpu) -> int:
        if not gpu.has_counter:
            raise NVMLError("Not Supported")
        updated = gpu.t0 + math.floor((time.perf_counter() - gpu.t0) / 0.1) * 0.1  # moves every 100 ms
        return round(gpu.energy_j(updated) * 1000)

    def field_values(gpu: FakeGpu, ids: list[int]) -> list:
        assert ids == [186]
        value = types.SimpleNamespace(uiVal=round(gpu.watts(time.perf_counter()) * 1000))
        return [types.SimpleNamespace(nvmlReturn=0, valueType=nvml.NVML_VALUE_TYPE_UNSIGNED_INT, value=value)]

    nvml.nvmlDeviceGetTotalEnergyConsumption = counter
    nvml.nvmlDeviceGetFieldValues = field_values
    return nvml


def step(idle_w: float, busy_w: float, at: float):
    return lambda t: idle_w if t < at else busy_w


def test_a_gpu_without_the_counter_is_polled_and_named(monkeypatch):
    at = time.perf_counter() + 0.5
    gpus = [FakeGpu(step(120.0, 400.0, at)), FakeGpu(step(60.0, 250.0, at), has_counter=False)]
    monkeypatch.setitem(sys.modules, "pynvml", fake_pynvml(gpus))
    meter = NvmlMeter()
    assert meter.describe() == (
        "nvml (GPU 0: energy counter; GPU 1: no energy counter, instant power polled at 100 Hz; gpu only)"
    )
    time.sleep(max(0.0, at - 0.25 - time.perf_counter()))
    window = meter.start()
    time.sleep(1.0)  # the load starts a quarter of the way in
    reading = window.stop()
    truth = sum(g.energy_j(window.polled.end) - g.energy_j(window.polled.start) for g in gpus)
    assert abs(reading.joules - truth) <= reading.uncertainty_j, (reading.joules, truth, reading.uncertainty_j)
    assert "energy counter of GPU 0" in reading.method and "instant power of GPU 1 polled every 10 ms" in reading.method
    assert reading.note == "GPU 1 has no energy counter: its instant power was polled at 100 Hz"


def test_meter_read_compares_the_counter_with_polled_instant_power(monkeypatch):
    gpus = [FakeGpu(lambda t: 300.0)]
    monkeypatch.setitem(sys.modules, "pynvml", fake_pynvml(gpus))
    reading, polled = read_for(NvmlMeter(), 1.0)
    assert polled is not None and polled.method == "instant power of GPU 0 polled every 10 ms"
    assert polled.joules == pytest.approx(300.0 * polled.seconds, rel=0.01)
    assert abs(reading.joules - 300.0 * reading.seconds) <= reading.uncertainty_j  # counter: quantised at 100 ms


def test_a_gpu_with_neither_reading_is_left_out_with_the_reason(monkeypatch):
    nvml = fake_pynvml([FakeGpu(lambda t: 50.0, has_counter=False)])

    def unsupported(gpu, ids):
        raise NVMLError("Not Supported")

    nvml.nvmlDeviceGetFieldValues = unsupported
    monkeypatch.setitem(sys.modules, "pynvml", nvml)
    with pytest.raises(MeterAbsent, match=r"GPU 0: no energy counter .*no instant power"):
        NvmlMeter()
