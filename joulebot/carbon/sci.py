"""SCI per ISO/IEC 21031 (GSF spec 1.1): SCI = ((E × I) + M) per R.

E is the whole machine's energy for the answer window in kWh (total, not
above idle: all reserved hardware counts), I the grid intensity in gCO2eq/kWh,
M the embodied share TE × (window / EL) × RS, and R one answer.
"""

from __future__ import annotations

from pydantic import BaseModel

from joulebot.carbon.intensity import Intensity
from joulebot.config import Settings

J_PER_KWH = 3_600_000.0
SECONDS_PER_YEAR = 365 * 24 * 3600


class Embodied(BaseModel):
    """The box's embodied emissions and how much of them one answer reserves."""

    te_g: float  # total embodied emissions of the box, gCO2eq
    lifespan_years: float  # EL
    resource_share: float = 1.0  # RS: share of the box reserved for the work
    configured: bool = True  # False: TE is the placeholder default, not this box's own figure

    @classmethod
    def from_settings(cls, settings: Settings) -> Embodied:
        return cls(
            te_g=settings.embodied_te_kg * 1000,
            lifespan_years=settings.embodied_lifespan_years,
            resource_share=settings.embodied_resource_share,
            configured="embodied_te_kg" in settings.model_fields_set,
        )

    def source(self) -> str:
        """Where TE comes from, as the footer says it."""
        te = f"TE {self.te_g / 1000:g} kg"
        if self.configured:
            return f"configured {te}"
        return f"placeholder default {te}, a laptop's: set EMBODIED_TE_KG"

    def share_g(self, seconds: float) -> float:
        """M = TE × (TiR / EL) × RS."""
        return self.te_g * (seconds / (self.lifespan_years * SECONDS_PER_YEAR)) * self.resource_share


class Carbon(BaseModel):
    """One answer's emissions. All in grams of CO2eq; None where energy is unknown."""

    intensity: Intensity
    operational_g: float | None  # E × I
    embodied_g: float  # M
    sci_g: float | None  # (E × I + M) / R, R = 1 answer
    embodied_source: str = "configured TE"  # where M's TE comes from (configured, or the placeholder default)


def carbon_for(total_j: float | None, seconds: float, intensity: Intensity, embodied: Embodied) -> Carbon:
    m = embodied.share_g(seconds)
    source = embodied.source()
    if total_j is None:
        return Carbon(intensity=intensity, operational_g=None, embodied_g=m, sci_g=None, embodied_source=source)
    operational = total_j / J_PER_KWH * intensity.g_per_kwh
    return Carbon(
        intensity=intensity, operational_g=operational, embodied_g=m, sci_g=operational + m, embodied_source=source
    )
