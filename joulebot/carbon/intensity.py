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
    is_estimated: bool | None = None  # live/cached: the API's own isEstimated
    age_s: float | None = None  # cached: seconds since it was fetched
    note: str = ""  # e.g. "unknown zone, world average", "live unavailable: HTTP 401"
    zone_default: bool = False  # GRID_ZONE (and GRID_LAT/LON) unset: the shipped default, not the box's own

    def with_note(self, note: str) -> Intensity:
        return self.model_copy(update={"note": "; ".join(n for n in (self.note, note) if n)})

    def label(self) -> str:
        """Short provenance text for a footer."""
        if self.provenance == "static":
            text = f"{self.zone}, static: {self.source} {self.year}"
        else:
            when = self.observed_at.strftime("%Y-%m-%d %H:%M UTC") if self.observed_at else "time unknown"
            estimated = ", estimated by the source" if self.is_estimated else ""
            age = f" {_age(self.age_s)} old" if self.provenance == "cached" and self.age_s is not None else ""
            text = f"{self.zone}, {self.provenance}{age}: {self.source} {when}{estimated}"
        return f"{text}; {self.note}" if self.note else text


def _age(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.0f} min"


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
