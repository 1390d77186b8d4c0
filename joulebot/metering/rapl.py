"""RAPL through Linux powercap sysfs: CPU package and DRAM energy counters.

Zones `intel-rapl:N` (package-N, or psys) and sub-zones `intel-rapl:N:M`
(core, uncore, dram). joulebot sums every package and every dram domain; core
and uncore are inside their package, and psys overlaps everything, so they are
left out. AMD CPUs expose the same tree on recent kernels.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from joulebot.metering.base import Meter, MeterAbsent
from joulebot.metering.counters import CounterWindow

PERMISSION_HELP = (
    "RAPL counters are readable by root only (since the 'Platypus' fix). Run the worker as root, or grant "
    "read access: sudo chmod a+r /sys/class/powercap/intel-rapl:*/energy_uj "
    "/sys/class/powercap/intel-rapl:*:*/energy_uj (lost at reboot; a udev rule or systemd-tmpfiles line keeps it)"
)


# RAPL is a model on many CPUs, a measurement on newer ones; published comparisons against
# external meters range from a few % to ~10 %: we assume ±10 %. It updates about every 1 ms.
ACCURACY = 0.10
UPDATE_S = 0.001


@dataclass(frozen=True)
class RaplDomain:
    path: Path
    name: str
    max_range_j: float

    def read_j(self) -> float:
        try:
            return int((self.path / "energy_uj").read_text()) / 1e6
        except PermissionError:
            raise MeterAbsent(PERMISSION_HELP) from None


def discover(powercap: Path) -> list[RaplDomain]:
    domains = []
    for zone in sorted(powercap.glob("intel-rapl:*")):
        name_file = zone / "name"
        if not name_file.is_file():
            continue
        name = name_file.read_text().strip()
        if not (name.startswith("package") or name == "dram"):
            continue
        max_range = int((zone / "max_energy_range_uj").read_text()) / 1e6
        domains.append(RaplDomain(zone, name, max_range))
    return domains


class RaplMeter(Meter):
    source = "rapl"
    scope = "cpu"

    def __init__(self, sysfs_root: Path = Path("/sys")) -> None:
        powercap = sysfs_root / "class" / "powercap"
        self.domains = discover(powercap)
        if not self.domains:
            raise MeterAbsent(f"no RAPL package or dram domain under {powercap}")
        self._read()  # fail now, with the permission message, rather than in the first answer

    def _read(self) -> list[float]:
        return [d.read_j() for d in self.domains]

    def start(self) -> CounterWindow:
        method = " + ".join(d.name for d in self.domains) + " counters"
        wraps: list[float | None] = [d.max_range_j for d in self.domains]
        return CounterWindow(self._read, wraps, self.source, self.scope, method, accuracy=ACCURACY, update_s=UPDATE_S)

    def describe(self) -> str:
        return f"rapl ({', '.join(d.name for d in self.domains)}; cpu only)"
