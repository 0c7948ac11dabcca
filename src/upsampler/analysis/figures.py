"""Writing figures to disk: ``save_png``, the one PNG writer of the package.

The figures themselves are built elsewhere (:mod:`upsampler.analysis.plots`, the training
study, the recipes) as ``matplotlib.figure.Figure``; this module only saves one, under a
temporary name then renamed into place (:func:`upsampler._atomic.atomic_write`). Nothing
here imports matplotlib: the figure brings its own ``savefig``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from upsampler._atomic import PathLike, atomic_write

FIGURE_DPI = 100  # recipe figures: 8 x 5 inches -> 800 x 500 pixels


def save_png(figure: Any, path: PathLike, dpi: int = FIGURE_DPI) -> Path:
    """Save a matplotlib ``figure`` as PNG atomically to ``path``."""
    return atomic_write(path, lambda temp: figure.savefig(temp, format="png", dpi=dpi))


__all__ = ["FIGURE_DPI", "save_png"]
