import math
import os
import time

import pytest

from joulebot.config import Settings
from joulebot.metering.answer_energy import MeasurementBox
from joulebot.metering.detect import MeterConfigError, detect_meters
from joulebot.metering.estimate import TICK_S, EstimateMeter

pytestmark = pytest.mark.unit  # nothing here starts a process or opens a socket


def _spin(seconds: float) -> int:
    end, n = time.perf_counter() + seconds, 0
    while time.perf_counter() < end:
        n += 1
    return n


def test_estimate_is_labelled_and_grows_with_cpu_work():
    meter = EstimateMeter.configured(5.0, 10.0)
    quiet = meter.start()
    time.sleep(0.3)
    quiet_reading = quiet.stop()
    busy = meter.start()
    cpu0 = time.process_time()
    _spin(0.3)
    own_cpu_s = time.process_time() - cpu0
    busy_reading = busy.stop()

    for reading in (quiet_reading, busy_reading):
        assert reading.source == "estimate" and reading.scope == "machine"
        assert reading.measured is False
        assert "W per busy core" in reading.method
        # never below the idle share of the window
        assert reading.joules >= 5.0 * reading.seconds
    # machine-wide busy time includes at least our own spinning: ≥ 10 W per core × our CPU seconds
    # (comparing with the quiet window would fail on a box other work already saturates)
    assert busy_reading.joules >= 5.0 * busy_reading.seconds + 10.0 * own_cpu_s * 0.95


def test_estimate_rejects_negative_powers():
    with pytest.raises(ValueError):
        EstimateMeter.configured(-1, 10)


def test_box_idle_baseline_and_attributable_energy():
    box = MeasurementBox([EstimateMeter.configured(5.0, 10.0)])
    idle = box.measure_idle(0.3)
    assert idle.seconds == pytest.approx(0.3, abs=0.1)
    assert idle.watts >= 5.0 and idle.source == "estimate" and idle.measured is False

    value, energy = box.measure(lambda: _spin(0.3))
    assert value > 0
    assert energy.idle == idle
    # above idle: never negative (a busy shared box can idle higher than it answers)
    assert energy.attributable_j == pytest.approx(max(0.0, energy.total_j - idle.watts * energy.seconds))
    assert 0 <= energy.attributable_j < energy.total_j
    assert energy.measured is False
    # the estimate's honest band: ±100 %, and half the busy time of the last gap between reads, which the
    # window's end cuts (every core for at most the window, if the sampler was held up; and a tick); above
    # idle adds the idle baseline's spread
    cut = 10.0 * (os.cpu_count() * (energy.seconds + 0.05) / 2 + TICK_S)
    assert energy.total_j <= energy.uncertainty_j <= energy.total_j + cut
    assert energy.attributable_uncertainty_j == pytest.approx(
        math.hypot(energy.uncertainty_j, idle.uncertainty_w * energy.seconds)
    )
    assert idle.uncertainty_w >= idle.watts  # the estimate's ±100 % carries into its idle figure


def test_box_without_baseline_leaves_attributable_unknown():
    _, energy = MeasurementBox([EstimateMeter.configured(5, 10)]).measure(lambda: None)
    assert energy.total_j is not None and energy.attributable_j is None


def test_failed_work_propagates_and_yields_no_energy():
    box = MeasurementBox([EstimateMeter.configured(5, 10)])
    with pytest.raises(ZeroDivisionError):
        box.measure(lambda: 1 / 0)


def test_auto_detection_on_a_machine_without_meters_keeps_the_estimate(tmp_path):
    detection = detect_meters(Settings(_env_file=None, sysfs_root=tmp_path, mcp39f511n_port=""))
    assert [m.source for m in detection.meters] == ["estimate"]
    assert "no RAPL package or dram domain" in detection.absent["rapl"]
    assert "NVIDIA" in detection.absent["nvml"] or "GPU" in detection.absent["nvml"]


def test_explicit_meters_must_work_or_say_why(tmp_path):
    assert [m.source for m in detect_meters(Settings(_env_file=None, meters="estimate")).meters] == ["estimate"]
    with pytest.raises(MeterConfigError, match="unknown meter 'wattmeter9000'"):
        detect_meters(Settings(_env_file=None, meters="rapl,wattmeter9000", sysfs_root=tmp_path))
    with pytest.raises(MeterConfigError, match="METERS asks for rapl, but: no RAPL"):
        detect_meters(Settings(_env_file=None, meters="rapl", sysfs_root=tmp_path))
    with pytest.raises(MeterConfigError, match=r"METERS asks for mcp39f511n, but: .*cannot open"):
        detect_meters(Settings(_env_file=None, meters="mcp39f511n", mcp39f511n_port="/nonexistent", meter_retries=0))


@pytest.mark.parametrize("seconds", [0.5, 1.0])
def test_instant_power_polled_at_100_hz_holds_a_step_that_starts_half_way(seconds):
    """How GPUs without an energy counter are metered: the instant power field, polled and integrated."""
    from joulebot.metering.sampling import InstantPower, SampledWindow

    t0 = time.perf_counter()
    step_at = t0 + seconds / 2

    def instant_w() -> float:  # 120 W idle, 400 W once the work starts half-way through the window
        return 120.0 if time.perf_counter() < step_at else 400.0

    window = SampledWindow(instant_w, 0.01, "nvml", "gpu", InstantPower(), accuracy=0.05, update_s=0.01)
    time.sleep(seconds)
    reading = window.stop()
    truth = 120.0 * (step_at - window.start) + 400.0 * (window.end - step_at)
    assert abs(reading.joules - truth) <= reading.uncertainty_j
    assert reading.uncertainty_j < 0.1 * reading.joules
