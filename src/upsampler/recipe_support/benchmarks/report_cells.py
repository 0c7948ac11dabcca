"""How ``docs/benchmarks.md`` writes a measured number in a table cell, and a table's lines.

Times keep :data:`SIGNIFICANT` digits and never go to exponent form; ratios of two times get
two decimals; the largest absolute differences, which span orders of magnitude, go to
exponent form. A missing number reads ``n/a``, and so does a time that is not finite.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

SIGNIFICANT = 3  # digits of a time in the tables


def sig(value: float | None) -> str:
    """``value`` to :data:`SIGNIFICANT` significant digits, never in exponent form."""
    if value is None or not math.isfinite(value):
        return "n/a"
    if value == 0:
        return "0"
    decimals = max(0, SIGNIFICANT - 1 - math.floor(math.log10(abs(value))))
    return f"{value:.{decimals}f}"


def ratio(value: float | None) -> str:
    """A ratio of two times, two decimals."""
    return "n/a" if value is None else f"{value:.2f}"


def diff(value: float | None) -> str:
    """A largest absolute difference, in exponent form."""
    return "n/a" if value is None else f"{value:.1e}"


def table(headings: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """Markdown table lines."""
    lines = ["| " + " | ".join(headings) + " |", "|" + "---|" * len(headings)]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


__all__ = ["SIGNIFICANT", "diff", "ratio", "sig", "table"]
