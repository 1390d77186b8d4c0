"""The estimate's power model, built from published figures about this machine's CPU and memory.

Where the figures come from (the files are in `joulebot/config/data/`, with their sources and
licences):

1. the CPU's thermal design power from CodeCarbon's CPU table (`cpu_tdp.json`), when the
   model name in /proc/cpuinfo is found there and the machine is not a virtual one (a VM
   shares the package with other guests: its TDP says nothing about a few vCPUs). CPU power
   then runs from CodeCarbon's floor of 10 % of TDP, nothing busy, to the TDP, every core busy;
2. else Cloud Carbon Footprint's per-vCPU minimum and maximum watts for the CPU's
   microarchitecture, told from cpuinfo's vendor, family and model numbers
   (`cpu_power_figures.json`); a family without published figures takes CCF's average;
3. memory: CCF's watts per GB of installed memory (/proc/meminfo), whatever the load.

Between the floor and the ceiling, power follows the measured utilisation (CCF's linear
model: min + utilisation × (max − min)). Where this machine sits in that span is what the
published figures cannot tell, so the band is half the span (± (ceiling − floor) / 2, at any
utilisation) plus the spread of the published memory figures. Everything else in the machine
(board, disks, fans, power supply) is not counted, and the label says so.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

_NOISE = re.compile(r"\((?:r|tm)\)|\bcpu\b|\bprocessor\b|\b\d+-core\b|@\s*[\d.]+\s*ghz", re.IGNORECASE)


@cache
def _data(name: str) -> Any:
    return json.loads(resources.files("joulebot.config").joinpath("data", name).read_text(encoding="utf-8"))


def _tokens(name: str) -> tuple[str, ...]:
    """A CPU name as comparable words: no (R)/(TM), no 'CPU @ 2.50GHz', no 'Processor' or 'NN-Core'."""
    return tuple(_NOISE.sub(" ", name).lower().split())


@cache
def _tdp_index() -> dict[tuple[str, ...], tuple[str, float]]:
    return {_tokens(name): (name, watts) for name, watts in _data("cpu_tdp.json")["tdp_w"].items()}


def tdp_of(model_name: str) -> tuple[str, float] | None:
    """(the table's name, TDP in W) of a cpuinfo model name, or None when the table has no match.

    The same name, words compared; else the longest table name whose words are all in the model
    name and which has a model number (a word with a digit): "AMD EPYC" alone matches nothing.
    Two longest matches with different TDPs are no match.
    """
    wanted = _tokens(model_name)
    index = _tdp_index()
    if wanted in index:
        return index[wanted]
    words = set(wanted)
    inside = [
        (len(key), found)
        for key, found in index.items()
        if set(key) <= words and any(ch.isdigit() for word in key for ch in word)
    ]
    if not inside:
        return None
    longest = max(n for n, _ in inside)
    best = {found for n, found in inside if n == longest}
    return best.pop() if len({w for _, w in best}) == 1 else None


@dataclass(frozen=True)
class CpuInfo:
    """What /proc/cpuinfo says about the CPU (x86 field names; others give fewer fields)."""

    vcpus: int
    sockets: int
    model_name: str | None = None
    vendor: str | None = None
    family: int | None = None
    model: int | None = None
    stepping: int | None = None
    virtual: bool = False  # the 'hypervisor' flag: a guest of a virtual machine

    @classmethod
    def read(cls, path: Path) -> CpuInfo:
        fields: dict[str, str] = {}
        processors, sockets = 0, set()
        for line in path.read_text(errors="replace").splitlines():
            key, _, value = line.partition(":")
            key, value = key.strip().lower(), value.strip()
            if key == "processor":
                processors += 1
            elif key == "physical id":
                sockets.add(value)
            elif key and key not in fields:
                fields[key] = value

        def number(key: str) -> int | None:
            value = fields.get(key, "")
            return int(value) if value.isdigit() else None

        return cls(
            vcpus=max(1, processors),
            sockets=max(1, len(sockets)),
            model_name=fields.get("model name") or None,
            vendor=fields.get("vendor_id") or None,
            family=number("cpu family"),
            model=number("model"),
            stepping=number("stepping"),
            virtual="hypervisor" in fields.get("flags", "").split(),
        )

    def describe(self) -> str:
        ids = f"{self.vendor} family {self.family} model {self.model}" if self.vendor else "no vendor or family"
        return f"{self.model_name!r}" if self.model_name else f"no model name ({ids})"


def memory_gb(path: Path) -> float | None:
    """Installed memory (MemTotal of /proc/meminfo) in GB, or None when it cannot be read."""
    try:
        for line in path.read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024 / 1e9
    except (OSError, ValueError, IndexError):
        return None
    return None


def ccf_family(cpu: CpuInfo) -> str | None:
    """The CCF microarchitecture of a CPU from its vendor, family and model numbers, if it has figures."""
    table = _data("cpu_power_figures.json")["family_by_cpuid"].get(cpu.vendor or "", {})
    for entry in table.get(str(cpu.family), []):
        in_models = cpu.model in entry.get("models", [])
        in_ranges = cpu.model is not None and any(lo <= cpu.model <= hi for lo, hi in entry.get("model_ranges", []))
        stepping_ok = "steppings" not in entry or cpu.stepping in entry["steppings"]
        if (in_models or in_ranges) and stepping_ok:
            return str(entry["family"])
    return None


@dataclass(frozen=True)
class PowerModel:
    """Machine power = idle_w + per_core_w × busy cores; ± band_w + band_fraction × the figure."""

    idle_w: float
    per_core_w: float
    label: str  # what the figures are and where they come from: shown with every estimate
    band_w: float = 0.0
    band_fraction: float = 0.0

    def joules(self, seconds: float, busy_core_s: float) -> float:
        return self.idle_w * seconds + self.per_core_w * busy_core_s

    def band_j(self, seconds: float, joules: float) -> float:
        return self.band_w * seconds + self.band_fraction * abs(joules)


def configured(idle_w: float, w_per_core: float) -> PowerModel:
    """Constants someone set for this machine (ESTIMATE_IDLE_W, ESTIMATE_W_PER_CORE): ± 100 %."""
    if idle_w < 0 or w_per_core < 0:
        raise ValueError("estimate powers must be >= 0 W")
    label = f"{idle_w:g} W idle + {w_per_core:g} W per busy core (configured)"
    return PowerModel(idle_w, w_per_core, label, band_fraction=1.0)


def _cpu_span(cpu: CpuInfo) -> tuple[float, float, str]:
    """(floor W, ceiling W, label) of the CPU: by its TDP, else by CCF's figures for its family."""
    figures = _data("cpu_power_figures.json")
    found = tdp_of(cpu.model_name) if cpu.model_name else None
    if found is not None and not cpu.virtual:
        name, tdp = found
        floor = figures["tdp_floor"]
        label = f"CPU {name}: TDP {tdp:g} W × {cpu.sockets} (CodeCarbon's CPU table), {floor:.0%} to 100 % with load"
        return floor * tdp * cpu.sockets, tdp * cpu.sockets, label
    if found is not None:
        why = f"{found[0]} (TDP {found[1]:g} W) is a package this virtual machine shares"
    elif cpu.model_name:
        why = f"{cpu.model_name!r} not in CodeCarbon's CPU table"
    else:
        why = "no CPU model name in cpuinfo"
    family = ccf_family(cpu)
    if family is not None:
        low, high = (figures["cpu_families"][family][k] for k in ("min_w_per_vcpu", "max_w_per_vcpu"))
        name = f"{family} (CCF)"
    else:
        low, high = (figures["average"][k] for k in ("min_w_per_vcpu", "max_w_per_vcpu"))
        name = "CCF's average of CPU families"
        why += f"; {cpu.vendor or 'unknown vendor'} family {cpu.family} model {cpu.model} has no CCF figures"
    label = f"CPU {name}: {low:g}–{high:g} W per vCPU × {cpu.vcpus} ({why})"
    return low * cpu.vcpus, high * cpu.vcpus, label


def published(proc_root: Path = Path("/proc")) -> PowerModel:
    """The model for the machine whose /proc (cpuinfo, meminfo) is at `proc_root`."""
    try:
        cpu = CpuInfo.read(proc_root / "cpuinfo")
    except OSError:
        cpu = CpuInfo(vcpus=1, sockets=1)
    floor, ceiling, label = _cpu_span(cpu)
    per_core = (ceiling - floor) / cpu.vcpus
    band = (ceiling - floor) / 2
    memory = _data("cpu_power_figures.json")["memory"]
    gb = memory_gb(proc_root / "meminfo")
    if gb is None:
        label += " + memory not counted (no meminfo)"
        memory_w = 0.0
    else:
        memory_w = memory["w_per_gb"] * gb
        band += memory["band"] * memory_w
        label += f" + memory {gb:.1f} GB × {memory['w_per_gb']:g} W/GB (CCF)"
    return PowerModel(floor + memory_w, per_core, label + "; CPU and memory only", band_w=band)
