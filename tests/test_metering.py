import time

import pytest

from joulebot.config import Settings
from joulebot.metering.box import MeasurementBox
from joulebot.metering.detect import MeterConfigError, select_meters
from joulebot.metering.estimate import EstimateMeter


def _spin(seconds: float) -> int:
    end, n = time.perf_counter() + seconds, 0
    while time.perf_counter() < end:
        n += 1
    return n


def test_estimate_is_labelled_and_grows_with_cpu_work():
    meter = EstimateMeter(idle_w=5.0, w_per_core=10.0)
    quiet = meter.start()
    time.sleep(0.3)
    quiet_reading = quiet.stop()
    busy = meter.start()
    _spin(0.3)
    busy_reading = busy.stop()

    for reading in (quiet_reading, busy_reading):
        assert reading.source == "estimate" and reading.scope == "machine"
        assert reading.measured is False
        assert "W per busy core" in reading.method
        # never below the idle share of the window
        assert reading.joules >= 5.0 * reading.seconds
    # a busy core for ~0.3 s adds ~3 J at 10 W per core; sleeping adds almost nothing
    assert busy_reading.watts > quiet_reading.watts + 3.0


def test_estimate_rejects_negative_powers():
    with pytest.raises(ValueError):
        EstimateMeter(idle_w=-1, w_per_core=10)


def test_box_idle_baseline_and_attributable_energy():
    box = MeasurementBox([EstimateMeter(idle_w=5.0, w_per_core=10.0)])
    idle = box.measure_idle(0.3)
    assert idle.seconds == pytest.approx(0.3, abs=0.1)
    assert idle.watts >= 5.0 and idle.source == "estimate" and idle.measured is False

    value, energy = box.measure(lambda: _spin(0.3))
    assert value > 0
    assert energy.idle == idle
    assert energy.attributable_j == pytest.approx(energy.total_j - idle.watts * energy.seconds)
    assert 0 < energy.attributable_j < energy.total_j
    assert energy.measured is False


def test_box_without_baseline_leaves_attributable_unknown():
    _, energy = MeasurementBox([EstimateMeter(5, 10)]).measure(lambda: None)
    assert energy.total_j is not None and energy.attributable_j is None


def test_failed_work_propagates_and_yields_no_energy():
    box = MeasurementBox([EstimateMeter(5, 10)])
    with pytest.raises(ZeroDivisionError):
        box.measure(lambda: 1 / 0)


def test_meter_selection():
    assert [m.source for m in select_meters(Settings(_env_file=None))] == ["estimate"]
    assert [m.source for m in select_meters(Settings(_env_file=None, meters="estimate"))] == ["estimate"]
    with pytest.raises(MeterConfigError, match="unknown meter"):
        select_meters(Settings(_env_file=None, meters="auto,wattmeter9000"))
