"""Numbers and units as every surface prints them: the footer, the dashboard, the CLI and the bench
tables read the same significant figures, the same ± band and the same mass unit from here."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable


def sig(value: float, digits: int = 3) -> str:
    """`digits` significant figures, never in scientific notation."""
    if value == 0 or not math.isfinite(value):
        return f"{value:g}"
    if abs(value) >= 10**digits:
        return f"{value:.0f}"
    decimals = max(0, digits - 1 - math.floor(math.log10(abs(value))))
    return f"{value:.{decimals}f}"


def grams(value: float) -> str:
    """CO2eq mass readable at any size: mg below 0.01 g."""
    return f"{sig(value * 1000)} mg" if abs(value) < 0.01 else f"{sig(value)} g"


def mass_unit(values: Iterable[float | None]) -> Callable[[float], str]:
    """One CO2eq unit for masses shown side by side (a footer's line, a table, its heatmap), so that
    neighbours never mix g and mg: mg when the largest of `values` is below 0.01 g, else g."""
    present = [abs(v) for v in values if v is not None and math.isfinite(v)]
    if present and max(present) < 0.01:
        return lambda value: f"{sig(value * 1000)} mg"
    return lambda value: f"{sig(value)} g"


def plus_minus(value: float | None) -> str:
    """A figure's band, ' ± 0.61' (two significant figures), or nothing when unknown."""
    return "" if value is None else f" ± {sig(value, 2)}"


def counted(n: int, thing: str) -> str:
    """'1 answer', '3 answers', '0 answers' (a noun whose plural takes an s)."""
    return f"{n} {thing}{'' if n == 1 else 's'}"
