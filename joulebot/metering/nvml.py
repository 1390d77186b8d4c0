"""NVIDIA GPUs through NVML (nvidia-ml-py): the energy counter, read at window edges.

`nvmlDeviceGetTotalEnergyConsumption` (mJ since driver load, Volta and newer)
is the reference. One counter read costs ~4 ms, so it is read at the window's
edges only. It moves about every 100 ms: a short window is quantised (± one
update of power at the edges, see `counters.py`).

GPUs without the counter are metered with the *instantaneous* power field
(`nvmlDeviceGetFieldValues` with `NVML_FI_DEV_POWER_INSTANT`, ~5 µs a read)
polled at 100 Hz and integrated, and said so in `joulebot meters` and the
footer. Never `nvmlDeviceGetPowerUsage`: on Ampere and newer it is a 1-second
average (our H200 measurement: −63 % at 0.5 s, −36 % over 2 s on a load that
starts half-way). GPUs with neither are left out, and said so.
"""

from __future__ import annotations

import math
from typing import Any

from joulebot.metering.base import Meter, MeterAbsent, Window
from joulebot.metering.counters import CounterWindow
from joulebot.metering.phases import PhaseEnergy
from joulebot.metering.reading import Reading
from joulebot.metering.sampling import InstantPower, MeterUnavailable, SampledWindow

# Our H200 measurement: the counter moves every ~100 ms (p10 88 ms, p90 119 ms).
COUNTER_UPDATE_S = 0.1
# NVIDIA documents neither figure's accuracy; we assume the ±5 % its power readings are usually given.
ACCURACY = 0.05
POLL_S = 0.01  # 100 Hz: the instant field costs ~5 µs a read


class NvmlMeter(Meter):
    source = "nvml"
    scope = "gpu"

    def __init__(self, indices: list[int] | None = None, poll_s: float = POLL_S) -> None:
        import pynvml

        self._nvml = pynvml
        self.poll_s = poll_s
        try:
            pynvml.nvmlInit()
            count = pynvml.nvmlDeviceGetCount()
        except pynvml.NVMLError as exc:
            raise MeterAbsent(f"no NVIDIA driver or GPU ({exc})") from None
        self.handles: list[tuple[int, Any]] = []  # GPUs metered by their energy counter
        self.polled: list[tuple[int, Any]] = []  # GPUs without it: instant power, polled
        self.instant: list[tuple[int, Any]] = []  # counter GPUs whose instant field also reads (for comparisons)
        self.skipped: list[str] = []
        for index in indices if indices is not None else range(count):
            if index >= count:
                raise MeterAbsent(f"GPU {index} does not exist (this machine has {count})")
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            instant_error = self._instant_error(handle)
            try:
                pynvml.nvmlDeviceGetTotalEnergyConsumption(handle)
            except pynvml.NVMLError as exc:
                if instant_error is None:
                    self.polled.append((index, handle))
                else:
                    self.skipped.append(f"GPU {index}: no energy counter ({exc}), no instant power ({instant_error})")
                continue
            self.handles.append((index, handle))
            if instant_error is None:
                self.instant.append((index, handle))
        if not self.handles and not self.polled:
            detail = f": {'; '.join(self.skipped)}" if self.skipped else ""
            raise MeterAbsent(f"no GPU with an energy counter or an instant power reading{detail}")

    # -- reads ---------------------------------------------------------------
    def _instant_one(self, handle: Any) -> float:
        """Watts from the instant power field (reported in mW)."""
        nvml = self._nvml
        (value,) = nvml.nvmlDeviceGetFieldValues(handle, [nvml.NVML_FI_DEV_POWER_INSTANT])
        if value.nvmlReturn != nvml.NVML_SUCCESS:
            raise nvml.NVMLError(value.nvmlReturn)
        kinds = {
            nvml.NVML_VALUE_TYPE_UNSIGNED_INT: "uiVal",
            nvml.NVML_VALUE_TYPE_UNSIGNED_LONG: "ulVal",
            nvml.NVML_VALUE_TYPE_UNSIGNED_LONG_LONG: "ullVal",
            nvml.NVML_VALUE_TYPE_SIGNED_LONG_LONG: "sllVal",
            nvml.NVML_VALUE_TYPE_DOUBLE: "dVal",
        }
        return float(getattr(value.value, kinds.get(value.valueType, "uiVal"))) / 1000

    def _instant_error(self, handle: Any) -> str | None:
        try:
            self._instant_one(handle)
        except (self._nvml.NVMLError, AttributeError) as exc:  # AttributeError: an nvidia-ml-py without the field
            return str(exc) or type(exc).__name__
        return None

    def _read_counters(self) -> list[float]:
        try:
            return [self._nvml.nvmlDeviceGetTotalEnergyConsumption(h) / 1000 for _, h in self.handles]
        except self._nvml.NVMLError as exc:
            raise MeterAbsent(f"NVML read failed: {exc}") from None

    def _instant_sum(self, gpus: list[tuple[int, Any]]) -> float:
        try:
            return sum(self._instant_one(h) for _, h in gpus)
        except self._nvml.NVMLError as exc:
            raise MeterUnavailable(f"NVML instant power read failed: {exc}") from None

    # -- windows -------------------------------------------------------------
    def _polled_window(self, gpus: list[tuple[int, Any]], why: str = "") -> SampledWindow:
        names = ", ".join(str(i) for i, _ in gpus)
        return SampledWindow(
            lambda: self._instant_sum(gpus),
            self.poll_s,
            self.source,
            self.scope,
            InstantPower(),
            accuracy=ACCURACY,
            update_s=self.poll_s,
            method=f"instant power of GPU {names} polled every {self.poll_s * 1000:g} ms{why}",
        )

    def start(self, compare: bool = False) -> NvmlWindow:
        """`compare`: also poll the instant power of the counter GPUs, for `joulebot meter read`."""
        counter = None
        if self.handles:
            method = "energy counter of GPU " + ", ".join(str(i) for i, _ in self.handles)
            counter = CounterWindow(
                self._read_counters,
                [None] * len(self.handles),
                self.source,
                self.scope,
                method,
                accuracy=ACCURACY,
                update_s=COUNTER_UPDATE_S,
            )
        polled = self._polled_window(self.polled, " (no energy counter)") if self.polled else None
        comparison = self._polled_window(self.instant) if compare and self.instant else None
        note = ""
        if self.polled:
            names = ", ".join(str(i) for i, _ in self.polled)
            note = f"GPU {names} has no energy counter: its instant power was polled at {1 / self.poll_s:g} Hz"
        return NvmlWindow(counter, polled, comparison, note)

    def temperatures(self) -> dict[str, float]:
        sensor = self._nvml.NVML_TEMPERATURE_GPU
        gpus = [*self.handles, *self.polled]
        return {f"gpu{i}": float(self._nvml.nvmlDeviceGetTemperature(h, sensor)) for i, h in gpus}

    def describe(self) -> str:
        parts = [f"GPU {i}: energy counter" for i, _ in self.handles]
        parts += [f"GPU {i}: no energy counter, instant power polled at {1 / self.poll_s:g} Hz" for i, _ in self.polled]
        return f"nvml ({'; '.join(parts)}; gpu only)"


class NvmlWindow(Window):
    """Counter GPUs and polled GPUs in one window; one Reading for all of them."""

    def __init__(
        self,
        counter: CounterWindow | None,
        polled: SampledWindow | None,
        comparison: SampledWindow | None,
        note: str,
    ) -> None:
        self.counter, self.polled, self.comparison, self.note = counter, polled, comparison, note
        self.comparison_reading: Reading | None = None  # the counter GPUs' instant power, integrated

    def stop(self) -> Reading:
        parts = [w.stop() for w in (self.counter, self.polled) if w is not None]
        if self.comparison is not None:
            self.comparison_reading = self.comparison.stop()
        if len(parts) == 1:
            reading = parts[0]
        else:
            failed = [p.error for p in parts if p.joules is None]
            if failed:
                reading = parts[0].model_copy(update={"joules": None, "error": "; ".join(e or "" for e in failed)})
            else:
                reading = parts[0].model_copy(
                    update={
                        "joules": sum(p.joules or 0.0 for p in parts),
                        "uncertainty_j": math.hypot(*(p.uncertainty_j or 0.0 for p in parts)),
                        "method": "; ".join(p.method for p in parts),
                        "samples": sum(p.samples for p in parts),
                        "update_s": max(p.update_s or 0.0 for p in parts),
                    }
                )
        if self.note and reading.joules is not None:
            reading = reading.model_copy(update={"note": self.note})
        return reading

    def split(self, at_s: float, band_s: float) -> PhaseEnergy:
        """Only GPUs polled for their power have samples in between; a counter GPU reads at the edges."""
        if self.polled is not None and self.counter is None:
            return self.polled.split(at_s, band_s)
        return super().split(at_s, band_s)
