"""Grid carbon intensity (with its provenance) and the SCI arithmetic.

`IntensityProvider` is imported on first use (PEP 562): it brings `requests` for the live
API, which front ends that only read a Result's `Carbon` (e.g. `joulebot ask`) never need.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from joulebot.carbon.intensity import Intensity, static_intensity
from joulebot.carbon.sci import Carbon, Embodied, carbon_for

if TYPE_CHECKING:
    from joulebot.carbon.provider import IntensityProvider

__all__ = ["Carbon", "Embodied", "Intensity", "IntensityProvider", "carbon_for", "static_intensity"]


def __getattr__(name: str) -> Any:
    if name == "IntensityProvider":
        from joulebot.carbon.provider import IntensityProvider

        return IntensityProvider
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
