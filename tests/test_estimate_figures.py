"""The estimate's model from published figures: which CPU a /proc/cpuinfo-like file describes, which
table row or fallback gives its power, and the label every estimate carries."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import pytest
from testenv import run_cli

from joulebot.metering.detect import detect_meters
from joulebot.metering.power_figures import CpuInfo, published, tdp_of

MEMINFO = "MemTotal:       16000000 kB\nMemFree:         8000000 kB\n"


def proc(tmp_path: Path, cpuinfo: str, meminfo: str | None = MEMINFO) -> Path:
    (tmp_path / "cpuinfo").write_text(cpuinfo)
    if meminfo is not None:
        (tmp_path / "meminfo").write_text(meminfo)
    return tmp_path


def x86(name: str | None, vendor: str, family: int, model: int, sockets: int = 1, threads: int = 4, flags: str = "fpu"):
    """A cpuinfo as Linux writes it on x86: one block per logical CPU."""
    blocks = []
    for i in range(sockets * threads):
        lines = [f"processor\t: {i}", f"vendor_id\t: {vendor}", f"cpu family\t: {family}", f"model\t\t: {model}"]
        lines += [f"model name\t: {name}"] if name is not None else []
        lines += ["stepping\t: 7", f"physical id\t: {i // threads}", f"siblings\t: {threads}", f"flags\t\t: {flags}"]
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n"


@pytest.mark.unit
def test_a_cpu_in_codecarbons_table_is_estimated_from_its_tdp(tmp_path):
    cpuinfo = x86("Intel(R) Xeon(R) Gold 6248 CPU @ 2.50GHz", "GenuineIntel", 6, 85, sockets=2, threads=40)
    model = published(proc(tmp_path, cpuinfo))
    memory_w = 0.392 * 16.384
    # two packages of 150 W: 10 % of TDP with nothing busy, TDP with every one of the 80 threads busy
    assert model.idle_w == pytest.approx(2 * 15.0 + memory_w)
    assert model.per_core_w == pytest.approx(2 * 135.0 / 80)
    assert model.band_w == pytest.approx(2 * 135.0 / 2 + 0.5 * memory_w)
    assert model.label.startswith("CPU Intel Xeon Gold 6248: TDP 150 W × 2 (CodeCarbon's CPU table)")
    assert "memory 16.4 GB × 0.392 W/GB (CCF)" in model.label and model.label.endswith("CPU and memory only")
    assert tdp_of("AMD EPYC 7742 64-Core Processor") == ("AMD EPYC 7742", 225.0)
    assert tdp_of("Intel(R) Xeon(R) CPU E5-2686 v4 @ 2.30GHz") == ("Intel Xeon E5-2686 v4", 145.0)


@pytest.mark.unit
def test_a_cpu_not_in_the_table_says_so_and_uses_its_family_figures(tmp_path):
    """This project's own VMs: 'AMD EPYC' alone (no model number), family 25 model 1 (Zen 3)."""
    model = published(proc(tmp_path, x86("AMD EPYC", "AuthenticAMD", 25, 1, threads=2, flags="fpu hypervisor")))
    assert tdp_of("AMD EPYC") is None, "a name without a model number matches no row"
    assert model.idle_w == pytest.approx(2 * 0.45 + 0.392 * 16.384)
    assert model.per_core_w == pytest.approx(2.02 - 0.45)
    assert model.band_w == pytest.approx(2 * (2.02 - 0.45) / 2 + 0.5 * 0.392 * 16.384)
    assert "CPU AMD EPYC 3rd Gen (CCF): 0.45–2.02 W per vCPU × 2 ('AMD EPYC' not in CodeCarbon's CPU table)" in (
        model.label
    )


@pytest.mark.unit
def test_a_machine_with_no_model_name_takes_the_average_and_says_which(tmp_path):
    model = published(proc(tmp_path, "processor\t: 0\n\nprocessor\t: 1\n\nprocessor\t: 2\n", meminfo=None))
    assert model.idle_w == pytest.approx(3 * 0.74)
    assert model.per_core_w == pytest.approx(3.5 - 0.74)
    assert "CCF's average of CPU families" in model.label and "no CPU model name in cpuinfo" in model.label
    assert "memory not counted (no meminfo)" in model.label
    assert CpuInfo.read(tmp_path / "cpuinfo").describe() == "no model name (no vendor or family)"


@pytest.mark.unit
def test_a_virtual_machine_is_not_given_its_hosts_whole_package(tmp_path):
    """A guest sees a few vCPUs of a package it shares: its TDP would bill them the whole package."""
    cpuinfo = x86(
        "Intel(R) Xeon(R) Platinum 8259CL CPU @ 2.50GHz", "GenuineIntel", 6, 85, threads=2, flags="hypervisor"
    )
    model = published(proc(tmp_path, cpuinfo))
    assert "Cascade Lake (CCF): 0.64–3.97 W per vCPU × 2" in model.label
    assert "Intel Xeon Platinum 8259CL (TDP 210 W) is a package this virtual machine shares" in model.label
    unknown = published(
        proc(tmp_path, x86("Intel(R) Xeon(R) Platinum 8480+", "GenuineIntel", 6, 143, flags="hypervisor"))
    )
    assert "CCF's average of CPU families" in unknown.label
    assert "GenuineIntel family 6 model 143 has no CCF figures" in unknown.label


@pytest.mark.unit
def test_the_shipped_figures_name_their_sources_and_licences():
    data = resources.files("joulebot.config").joinpath("data")
    tdp = json.loads(data.joinpath("cpu_tdp.json").read_text())
    figures = json.loads(data.joinpath("cpu_power_figures.json").read_text())
    assert tdp["licence"] == "MIT" and "Copyright (c) 2023 Code Carbon NGO" in tdp["licence_text"]
    assert "codecarbon/data/hardware/cpu_power.csv" in tdp["source"] and len(tdp["tdp_w"]) > 4000
    assert figures["sources"]["ccf"]["licence"].startswith("Apache-2.0")
    assert len(figures["sources"]["ccf"]["commit"]) == 40
    assert all(f["min_w_per_vcpu"] < f["max_w_per_vcpu"] for f in figures["cpu_families"].values())


@pytest.mark.unit
def test_the_estimate_meter_reads_the_proc_it_is_pointed_at(tmp_path, settings):
    root = proc(tmp_path, x86("AMD EPYC 7742 64-Core Processor", "AuthenticAMD", 23, 49, threads=128))
    detection = detect_meters(settings.model_copy(update={"proc_root": root, "meters": "estimate"}))
    (estimate,) = detection.meters
    assert "CPU AMD EPYC 7742: TDP 225 W × 1" in estimate.describe() and "not a measurement" in estimate.describe()
    configured = detect_meters(
        settings.model_copy(update={"meters": "estimate", "estimate_idle_w": 9.0, "estimate_w_per_core": 3.0})
    )
    assert configured.meters[0].method == "9 W idle + 3 W per busy core (configured)"


def test_half_the_estimate_constants_is_one_clear_line(settings):
    done = run_cli(settings, "meters", ESTIMATE_IDLE_W="9")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip() == (
        "joulebot: ESTIMATE_W_PER_CORE='None': goes with ESTIMATE_IDLE_W: set both (your own constants)"
        " or neither (published figures for this CPU)"
    )
