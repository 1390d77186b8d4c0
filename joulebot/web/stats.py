"""A mean and its 95 % confidence interval from SQL aggregates (count, sum, sum of squares).

The database sums; Python only divides. The interval is Student's t for the mean of
n answers, so it says how well the mean is known, not how much one answer varies.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# two-sided 95 % quantiles of Student's t, by degrees of freedom
_T95 = (
    12.706,
    4.303,
    3.182,
    2.776,
    2.571,
    2.447,
    2.365,
    2.306,
    2.262,
    2.228,
    2.201,
    2.179,
    2.160,
    2.145,
    2.131,
    2.120,
    2.110,
    2.101,
    2.093,
    2.086,
    2.080,
    2.074,
    2.069,
    2.064,
    2.060,
    2.056,
    2.052,
    2.048,
    2.045,
    2.042,
)
_Z95 = 1.959964


def t95(df: int) -> float:
    """Student's t quantile; past the table, the first Cornish-Fisher term (within 0.1 % for df > 30)."""
    if df < 1:
        raise ValueError("a confidence interval needs at least two answers")
    if df <= len(_T95):
        return _T95[df - 1]
    return _Z95 + (_Z95**3 + _Z95) / (4 * df)


@dataclass(frozen=True)
class Mean:
    n: int
    mean: float
    ci95: float | None  # half-width; None for a single answer (no spread to estimate)

    @classmethod
    def from_sums(cls, n: int, total: float, squares: float) -> Mean:
        mean = total / n
        if n < 2:
            return cls(n, mean, None)
        variance = max(0.0, (squares - total * total / n) / (n - 1))  # rounding can dip just below 0
        return cls(n, mean, t95(n - 1) * math.sqrt(variance / n))
