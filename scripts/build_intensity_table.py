"""Rebuild joulebot/config/data/grid_intensity.json from CodeCarbon's bundled table.

CodeCarbon (MIT) ships Our World in Data's per-country annual carbon intensity of
electricity (gCO2eq/kWh), keyed by ISO 3166 alpha-3. joulebot keys zones the way
Electricity Maps does (ISO alpha-2, optionally with a sub-zone suffix), so this
script converts the keys once; the result is committed as plain data.

    pip install codecarbon==3.3.2 pycountry
    python scripts/build_intensity_table.py
"""

import json
from importlib import resources
from pathlib import Path

import pycountry

SOURCE = "Our World in Data (via CodeCarbon 3.3.2)"
WORLD = {"g_per_kwh": 475.0, "year": 2023, "name": "World average"}
OUT = Path(__file__).resolve().parent.parent / "joulebot" / "config" / "data" / "grid_intensity.json"


def main() -> None:
    raw = resources.files("codecarbon") / "data" / "private_infra" / "global_energy_mix.json"
    table = json.loads(raw.read_text())
    zones = {}
    for alpha3, row in sorted(table.items()):
        country = pycountry.countries.get(alpha_3=alpha3)
        zones[country.alpha_2] = {
            "g_per_kwh": round(float(row["carbon_intensity"]), 2),
            "year": int(row["year"]),
            "name": row["country_name"],
        }
    zones = dict(sorted(zones.items()))
    OUT.write_text(json.dumps({"source": SOURCE, "world": WORLD, "zones": zones}, indent=1) + "\n")
    print(f"{len(zones)} zones -> {OUT}")


if __name__ == "__main__":
    main()
