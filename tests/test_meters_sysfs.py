"""RAPL and hwmon against sysfs-like trees, and the box's choice of the machine figure."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from joulebot.chat.footer import source_label
from joulebot.metering.answer_energy import MeasurementBox
from joulebot.metering.base import MeterAbsent
from joulebot.metering.estimate import EstimateMeter
from joulebot.metering.mcp39f511n import McpMeter
from joulebot.metering.mcp39f511n_sim import SimulatedMCP39F511N
from joulebot.metering.rapl import RaplMeter
from joulebot.metering.temperature import hwmon_temperatures, wait_until_cool


class RaplTree:
    """A powercap tree: package-0 with core and dram sub-zones, and psys."""

    def __init__(self, root: Path, max_uj: int = 262_143_328_850) -> None:
        self.powercap = root / "class" / "powercap"
        self.max_uj = max_uj
        self.zones = {}
        for zone, name in [
            ("intel-rapl:0", "package-0"),
            ("intel-rapl:0:0", "core"),
            ("intel-rapl:0:1", "dram"),
            ("intel-rapl:1", "psys"),
        ]:
            path = self.powercap / zone
            path.mkdir(parents=True)
            (path / "name").write_text(name + "\n")
            (path / "max_energy_range_uj").write_text(f"{max_uj}\n")
            self.zones[name] = path
            self.set(name, 1_000_000)

    def set(self, name: str, uj: int) -> None:
        (self.zones[name] / "energy_uj").write_text(f"{uj % self.max_uj}\n")

    def get(self, name: str) -> int:
        return int((self.zones[name] / "energy_uj").read_text())


@pytest.mark.unit
def test_rapl_sums_package_and_dram_only(tmp_path):
    tree = RaplTree(tmp_path)
    meter = RaplMeter(tmp_path)
    assert [d.name for d in meter.domains] == ["package-0", "dram"]
    window = meter.start()
    tree.set("package-0", tree.get("package-0") + 12_500_000)  # +12.5 J
    tree.set("dram", tree.get("dram") + 2_000_000)  # +2 J
    tree.set("core", tree.get("core") + 9_000_000)  # inside the package: not added again
    tree.set("psys", tree.get("psys") + 99_000_000)  # overlaps everything: not added
    reading = window.stop()
    assert reading.joules == pytest.approx(14.5)
    assert reading.source == "rapl" and reading.scope == "cpu" and reading.measured
    assert reading.method == "package-0 + dram counters"
    # ±10 % assumed accuracy, plus one 1 ms update of the window's mean power at each edge
    assert reading.uncertainty_j == pytest.approx(1.45 + min(reading.seconds, 0.001) * 14.5 / reading.seconds)
    assert reading.update_s == 0.001
    # a window under ten of RAPL's updates is flagged short (a loaded machine can stretch this one past 10 ms)
    assert reading.short_window == (reading.seconds < 0.010)


@pytest.mark.unit
def test_rapl_counter_wrap_is_added_back(tmp_path):
    tree = RaplTree(tmp_path, max_uj=50_000_000)
    tree.set("package-0", 49_000_000)
    window = RaplMeter(tmp_path).start()
    tree.set("package-0", 49_000_000 + 3_000_000)  # wraps to 2_000_000
    assert window.stop().joules == pytest.approx(3.0)


@pytest.mark.unit
@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_rapl_permission_error_says_how_to_grant_access(tmp_path):
    tree = RaplTree(tmp_path)
    (tree.zones["package-0"] / "energy_uj").chmod(0)
    with pytest.raises(MeterAbsent, match=r"readable by root only.*chmod"):
        RaplMeter(tmp_path)


@pytest.mark.unit
def test_rapl_absent_without_zones(tmp_path):
    with pytest.raises(MeterAbsent, match="no RAPL package or dram domain"):
        RaplMeter(tmp_path)


def _hwmon(root: Path, chip: str, name: str, sensors: dict[str, int]) -> None:
    path = root / "class" / "hwmon" / chip
    path.mkdir(parents=True)
    (path / "name").write_text(name + "\n")
    for i, (label, millideg) in enumerate(sensors.items(), start=1):
        (path / f"temp{i}_input").write_text(f"{millideg}\n")
        (path / f"temp{i}_label").write_text(label + "\n")


@pytest.mark.unit
def test_hwmon_temperatures(tmp_path):
    _hwmon(tmp_path, "hwmon0", "coretemp", {"Package id 0": 71_000, "Core 0": 65_500})
    _hwmon(tmp_path, "hwmon1", "nvme", {"Composite": 38_850})
    assert hwmon_temperatures(tmp_path) == {
        "coretemp/Package id 0": 71.0,
        "coretemp/Core 0": 65.5,
        "nvme/Composite": 38.85,
    }
    assert hwmon_temperatures(tmp_path / "empty") == {}


@pytest.mark.unit
def test_cool_down_waits_while_hot_and_says_so(tmp_path):
    _hwmon(tmp_path, "hwmon0", "coretemp", {"Package id 0": 82_000})
    sensor = tmp_path / "class" / "hwmon" / "hwmon0" / "temp1_input"
    said, slept = [], []

    def sleep(seconds: float) -> None:  # the box cools 5 °C per pause
        slept.append(seconds)
        sensor.write_text(str(int(sensor.read_text()) - 5000))

    waited = wait_until_cool(lambda: hwmon_temperatures(tmp_path), 75.0, 60, 900, said.append, sleep)
    assert waited == 120 and slept == [60, 60]
    assert said[0] == "cooling down (coretemp/Package id 0 82 °C > 75 °C)"
    assert wait_until_cool(lambda: {"x": 99.0}, 75.0, 60, 150, sleep=lambda s: None) == 150, "bounded"
    assert wait_until_cool(dict, 75.0, 60, 900) == 0, "no sensors: no wait"


def _spin(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


@pytest.mark.unit
def test_box_prefers_the_wall_meter_and_falls_back_honestly(tmp_path):
    tree = RaplTree(tmp_path)
    with SimulatedMCP39F511N(power_w=150.0) as sim:
        # a loaded machine may answer a read late: the wall meter waits for it as a real one is set up to
        wall = McpMeter(sim.port, interval_s=0.05, retries=1, timeout_s=1.0)
        box = MeasurementBox([wall, RaplMeter(tmp_path), EstimateMeter.configured(5, 10)], tmp_path)
        idle = box.measure_idle(0.3)
        assert idle.source == "mcp39f511n" and idle.watts == pytest.approx(150.0)
        assert idle.uncertainty_w < 2.0, "a steady load: the 0.5 % class, and little spread"
        # the CPU+GPU sum has its own idle too: a wall meter failing mid-answer still gives "above idle"
        assert set(box.idle_by_source) == {"mcp39f511n", "rapl", "estimate"}

        # the work sleeps, as a model's C code or another process leaves the GIL free: a Python loop
        # holding it starves the sampler's thread on a slow machine, and the meter then (rightly) refuses
        def work():  # long enough that a sampler held up for a moment by a loaded machine still sees half
            tree.set("package-0", tree.get("package-0") + 4_000_000)
            time.sleep(0.6)

        _, energy = box.measure(work)
        assert energy.machine.source == "mcp39f511n" and energy.measured, source_label(energy)
        assert energy.total_j == pytest.approx(150.0 * energy.seconds, rel=1e-3)
        assert {r.source for r in energy.components} == {"rapl", "estimate"}
        assert source_label(energy) == "measured at the wall by mcp39f511n"

        # the wall meter dies mid-answer: RAPL alone is not the machine, so the figure is labelled
        def dying_work():
            sim.faults.extend(["nak"] * 50)
            tree.set("package-0", tree.get("package-0") + 4_000_000)
            time.sleep(0.3)

        _, energy = box.measure(dying_work)
    assert energy.machine.source == "rapl" and energy.machine.scope == "components"
    assert energy.total_j == pytest.approx(4.0)
    label = source_label(energy)
    assert label.startswith("measured by rapl (sum of rapl (cpu)), not the whole machine; mcp39f511n failed:")
    assert energy.attributable_j is not None  # against RAPL's own idle, not the wall's


@pytest.mark.unit
def test_box_without_hardware_uses_the_estimate_and_says_why_when_a_meter_failed(tmp_path):
    with SimulatedMCP39F511N(power_w=80.0) as sim:
        meters = [McpMeter(sim.port, interval_s=0.05, retries=0, timeout_s=0.2), EstimateMeter.configured(5, 10)]
        box = MeasurementBox(meters)
        sim.faults.append("vanish")
        _, energy = box.measure(lambda: _spin(0.3))
    assert energy.machine.source == "estimate" and not energy.measured
    assert source_label(energy).startswith("estimated, mcp39f511n failed: ")
    assert energy.total_j > 0


def _hot_box(embedded, monkeypatch) -> Path:
    """The embedded worker (started by the test's first job) sees a 90 °C package and cools down above
    75 °C; returns the sensor file to write a cooler reading into."""
    _hwmon(embedded.data_dir, "hwmon0", "coretemp", {"Package id 0": 90_000})
    for name, value in {
        "SYSFS_ROOT": embedded.data_dir,
        "COOLDOWN_ABOVE_C": "75",
        "COOLDOWN_SLEEP_S": "0.2",
        "IDLE_BASELINE_S": "0.2",
        "JOULEBOT_DATA_DIR": embedded.data_dir,
    }.items():
        monkeypatch.setenv(name, str(value))
    return embedded.data_dir / "class" / "hwmon" / "hwmon0" / "temp1_input"


@pytest.mark.e2e
def test_a_hot_box_makes_jobs_wait_and_queued_users_are_told(embedded, monkeypatch):
    """Real worker, real queue: the worker cools down before the job; a queued job's progress says so."""
    from joulebot.chat.asking import build_request
    from joulebot.chat.status import status_text
    from joulebot.keys import box_status_key
    from joulebot.models import build_catalog
    from joulebot.queueing.client import QueueClient

    sensor = _hot_box(embedded, monkeypatch)
    client = QueueClient(embedded)
    catalog = build_catalog(9.0)
    first = client.submit(build_request(embedded, catalog, platform="cli", user_id="u1", prompt="Say one."))
    second = client.submit(build_request(embedded, catalog, platform="cli", user_id="u2", prompt="Say two."))

    deadline = time.monotonic() + 60
    seen: set[str] = set()
    wanted = {
        "⏳ queued — position 1 · box cooling down (coretemp/Package id 0 90 °C > 75 °C)",
        f"⚙️ running on {embedded.box_name} · cooling down (coretemp/Package id 0 90 °C > 75 °C)",
    }
    while not wanted <= seen and time.monotonic() < deadline:
        seen.add(status_text(client.progress(first)))
        seen.add(status_text(client.progress(second)))
        time.sleep(0.05)
    assert wanted <= seen, seen

    sensor.write_text("60000\n")  # the box has cooled
    results = [client.wait(first, timeout_s=60), client.wait(second, timeout_s=60)]
    assert all(r.answer for r in results)
    assert results[0].energy.idle.measured_at > results[0].request.created_at, "idle re-measured after cooling"
    assert client.connection.get(box_status_key(embedded.queue_name)) is None, "the status is cleared"


@pytest.mark.e2e
def test_a_job_that_times_out_while_the_box_cools_leaves_no_cooling_status(embedded, monkeypatch):
    """The next answer may report no stage at all (a warm one does not): the box status it would
    have cleared must not stay at "cooling down" for the next job's waiting users and the dashboard."""
    from joulebot.chat.asking import build_request
    from joulebot.keys import box_status_key
    from joulebot.models import build_catalog
    from joulebot.queueing.client import JobError, QueueClient

    sensor = _hot_box(embedded, monkeypatch)
    hurried = embedded.model_copy(update={"job_timeout_s": 2})  # shorter than the cool-down lasts
    client = QueueClient(hurried)
    catalog = build_catalog(9.0)
    status = box_status_key(embedded.queue_name)
    hot = client.submit(build_request(hurried, catalog, platform="cli", user_id="u1", prompt="Say one."))
    deadline = time.monotonic() + 60
    while client.connection.get(status) is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert client.connection.get(status), "the box said it is cooling down"
    with pytest.raises(JobError, match="did not finish within 2 s"):
        client.wait(hot, timeout_s=60)
    assert client.connection.get(status) is None, "the timed-out job cleared its cooling status"
    sensor.write_text("60000\n")
    patient = QueueClient(embedded)
    warm = patient.submit(build_request(embedded, catalog, platform="cli", user_id="u2", prompt="Say two."))
    assert patient.wait(warm, timeout_s=60).answer
    assert client.connection.get(status) is None


@pytest.mark.unit
@pytest.mark.parametrize("meters", ["auto", "mcp39f511n,estimate"])
def test_a_wall_meter_with_a_range_it_cannot_scale_is_not_used_and_every_figure_says_so(tmp_path, meters):
    from joulebot.config import Settings
    from joulebot.metering.detect import detect_meters

    with SimulatedMCP39F511N(power_w=80.0, power_range=12) as sim:
        settings = Settings(_env_file=None, meters=meters, mcp39f511n_port=sim.port, sysfs_root=tmp_path)
        detection = detect_meters(settings)  # never fatal, even when METERS names it
    assert [m.source for m in detection.meters] == ["estimate"]
    assert "power range 12" in detection.refused["mcp39f511n"]
    box = MeasurementBox(detection.meters, tmp_path, detection.refused)
    _, energy = box.measure(lambda: _spin(0.05))
    assert source_label(energy).startswith(
        "estimated, mcp39f511n not used: MCP39F511N channel 1: power range 12 is not one joulebot knows"
    )
