"""Grid carbon intensity for a zone, and where the figure came from."""

from __future__ import annotations

import json
from datetime import datetime
from functools import lru_cache
from importlib import resources
from typing import Literal

from pydantic import BaseModel

Provenance = Literal["live", "cached", "static"]


class Intensity(BaseModel):
    g_per_kwh: float
    zone: str  # the zone asked for
    provenance: Provenance
    source: str  # "Electricity Maps", or the static table's source
    year: int | None = None  # static: the year of the annual average
    observed_at: datetime | None = None  # live/cached: the API's datetime
    note: str = ""  # e.g. "unknown zone: world average"

    def label(self) -> str:
        """Short provenance text for a footer."""
        if self.provenance == "static":
            where = self.zone if not self.note else f"{self.zone}: {self.note}"
            return f"{where}, static: {self.source} {self.year}"
        when = self.observed_at.strftime("%Y-%m-%d %H:%M UTC") if self.observed_at else "time unknown"
        return f"{self.zone}, {self.provenance}: {self.source} {when}"


@lru_cache(maxsize=1)
def _static_table() -> dict:
    data = resources.files("joulebot.config") / "data" / "grid_intensity.json"
    return json.loads(data.read_text(encoding="utf-8"))


def static_intensity(zone: str) -> Intensity:
    """The annual average of the zone's country; the world average for unknown zones.

    Electricity Maps zones are a country code with an optional sub-zone
    (`US-CAL-CISO`, `DK-DK1`): the static table knows countries only.
    """
    table = _static_table()
    country = zone.upper().split("-")[0]
    row = table["zones"].get(country)
    note = ""
    if row is None:
        row, note = table["world"], "unknown zone, world average"
    elif country != zone.upper():
        note = f"country average of {country}"
    return Intensity(
        g_per_kwh=row["g_per_kwh"],
        zone=zone.upper(),
        provenance="static",
        source=table["source"] if row is not table["world"] else "world average",
        year=row["year"],
        note=note,
    )
