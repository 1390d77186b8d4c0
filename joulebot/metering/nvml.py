"""NVIDIA GPUs through NVML (nvidia-ml-py): the energy counter, read at window edges.

`nvmlDeviceGetTotalEnergyConsumption` (mJ since driver load, Volta and newer)
is the reference. Integrating `nvmlDeviceGetPowerUsage` is not done: on Ampere
and newer it is a 1-second average (our H200 measurement: −63 % at 0.5 s).
One counter read costs ~4 ms, so it is read at the window's edges only.
GPUs without the counter are left out and said so by `joulebot meters`.
"""

from __future__ import annotations

from joulebot.metering.base import Meter, MeterAbsent
from joulebot.metering.counters import CounterWindow

# Our H200 measurement: the counter moves every ~100 ms (p10 88 ms, p90 119 ms).
COUNTER_UPDATE_S = 0.1
# NVIDIA does not document the counter's accuracy; we assume the ±5 % its power readings are usually given.
ACCURACY = 0.05


class NvmlMeter(Meter):
    source = "nvml"
    scope = "gpu"

    def __init__(self, indices: list[int] | None = None) -> None:
        import pynvml

        self._nvml = pynvml
        try:
            pynvml.nvmlInit()
            count = pynvml.nvmlDeviceGetCount()
        except pynvml.NVMLError as exc:
            raise MeterAbsent(f"no NVIDIA driver or GPU ({exc})") from None
        self.handles = []
        self.skipped: list[str] = []
        for index in indices if indices is not None else range(count):
            if index >= count:
                raise MeterAbsent(f"GPU {index} does not exist (this machine has {count})")
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            try:
                pynvml.nvmlDeviceGetTotalEnergyConsumption(handle)
            except pynvml.NVMLError as exc:
                self.skipped.append(f"GPU {index}: no energy counter ({exc})")
                continue
            self.handles.append((index, handle))
        if not self.handles:
            detail = f": {'; '.join(self.skipped)}" if self.skipped else ""
            raise MeterAbsent(f"no GPU with an energy counter{detail}")

    def _read(self) -> list[float]:
        try:
            return [self._nvml.nvmlDeviceGetTotalEnergyConsumption(h) / 1000 for _, h in self.handles]
        except self._nvml.NVMLError as exc:
            raise MeterAbsent(f"NVML read failed: {exc}") from None

    def start(self) -> CounterWindow:
        method = "energy counter of GPU " + ", ".join(str(i) for i, _ in self.handles)
        return CounterWindow(
            self._read, [None] * len(self.handles), self.source, self.scope, method,
            accuracy=ACCURACY, update_s=COUNTER_UPDATE_S,
        )  # fmt: skip

    def temperatures(self) -> dict[str, float]:
        sensor = self._nvml.NVML_TEMPERATURE_GPU
        return {f"gpu{i}": float(self._nvml.nvmlDeviceGetTemperature(h, sensor)) for i, h in self.handles}

    def describe(self) -> str:
        return f"nvml (GPU {', '.join(str(i) for i, _ in self.handles)}; gpu only)"
