"""One definition of a mean's ± 95 %, read by every surface: `joulebot stats`, the bots' /stats and
/models, the bench tables, the dashboard, `/api/table.*` and the greener-model hint.

A cell is the answers of one model to one task on one basis (box, energy source, measured or
estimated). Its ± 95 % combines, root-sum-square as the GUM combines a type A and a type B
evaluation, two parts that a metrologist keeps apart:

- the scatter of the answers, t(n−1) · s / √n (Student's t, two-sided 95 %): how well n answers
  pin the mean down; it shrinks as answers come in;
- the meter's systematic part: the answers' mean band (each answer's own ± about 95 %, stored
  with it), in the proportion of the figure that scales with the meter's reading. A calibration
  or model error is the same on every answer of one meter, so this part does not shrink with n.

One answer has no scatter to estimate, so no interval of the mean (None): its own band says how
well that one answer was measured, not what the model's next answer will cost. The worked
example and the reasons are in docs/measurement.md.

The quantiles come from SciPy's `scipy.special` (its Student's t and normal quantiles), imported on
first use: asking a question never needs it, and `scipy.stats`, which wraps the same functions, takes
about three times as long to import.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

CONFIDENCE = 0.95


@functools.cache
def t95(df: int) -> float:
    """The two-sided 95 % quantile of Student's t with `df` degrees of freedom."""
    if df < 1:
        raise ValueError("a confidence interval of a mean needs at least two answers")
    from scipy.special import stdtrit  # what scipy.stats.t.ppf evaluates, without loading scipy.stats

    return float(stdtrit(df, 0.5 + CONFIDENCE / 2))


@functools.cache
def _z95() -> float:
    """The two-sided 95 % quantile of the normal distribution (1.959964…)."""
    from scipy.special import ndtri

    return float(ndtri(0.5 + CONFIDENCE / 2))


def wilson(correct: int, n: int) -> tuple[float, float]:
    """The Wilson score interval (95 %) of a share correct: sound for small n and for 0 % or 100 %.
    No answers: the whole range."""
    if n == 0:
        return 0.0, 1.0
    z, p = _z95(), correct / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def sample_stdev(n: int, total: float, squares: float) -> float:
    """Sample standard deviation from a count, a sum and a sum of squares (what SQL can aggregate).

    Both databases sum in double precision; the difference is clamped at 0 where rounding makes
    a constant series come out a hair negative. 0 for a single answer.
    """
    if n < 2:
        return 0.0
    return math.sqrt(max(0.0, (squares - total * total / n) / (n - 1)))


def systematic(band_j: float, total_j: float, part: float) -> float:
    """The meter's systematic part of a mean: the answers' mean band relative to their mean total
    energy (`band_j` and `total_j` summed over the same answers), times the mean `part` of the figure
    that scales with the meter's reading (the energy itself; for SCI its operational E × I only)."""
    return band_j / total_j * abs(part) if total_j > 0 else 0.0


@dataclass(frozen=True)
class Mean:
    """A cell: n answers, their mean, and the half-width of its 95 % interval (None for one answer)."""

    n: int
    mean: float
    ci95: float | None

    @classmethod
    def from_sums(cls, n: int, total: float, squares: float, systematic_part: float = 0.0) -> Mean:
        """From SQL's count, sum and sum of squares, and the meter's systematic part (see `systematic`)."""
        mean = total / n
        if n < 2:
            return cls(n, mean, None)
        scatter = t95(n - 1) * sample_stdev(n, total, squares) / math.sqrt(n)
        return cls(n, mean, math.hypot(scatter, systematic_part))


@dataclass(frozen=True, order=True)
class Basis:
    """What makes two figures comparable: the same box, the same energy source (a meter, a sum of
    meters, or the estimate), measured vs estimated, and whether the answers read images (reading
    an image is work a text-only answer never does). Statistics are computed within one basis and
    never compared across two."""

    box: str
    source: str
    measured: bool
    images: bool = False

    @property
    def slug(self) -> str:
        return f"{self.box} · {self.source}" + (" · with images" if self.images else "")

    def label(self) -> str:
        kind = "measured" if self.measured else "estimated, not a measurement"
        return f"{self.slug} ({kind})"
