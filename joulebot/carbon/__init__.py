"""Grid carbon intensity (with its provenance) and the SCI arithmetic."""

from joulebot.carbon.intensity import Intensity, static_intensity
from joulebot.carbon.provider import IntensityProvider
from joulebot.carbon.sci import Carbon, Embodied, carbon_for

__all__ = ["Carbon", "Embodied", "Intensity", "IntensityProvider", "carbon_for", "static_intensity"]
