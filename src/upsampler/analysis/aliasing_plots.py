"""Figures for the aliasing measure; each returns a ``matplotlib.figure.Figure`` (no pyplot).

    plot_aliasing_sweeps(sweeps, title=...) -> Figure   dB against tone frequency per variant
    plot_aliasing_spectrum(report, title=...) -> Figure output spectrum, wanted bins marked
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure

from upsampler.analysis.aliasing import POWER_EPS, AliasingReport

FIGURE_SIZE = (8.0, 4.0)


def plot_aliasing_sweeps(
    sweeps: Mapping[str, Sequence[AliasingReport]], title: str = "Aliasing by tone frequency"
) -> Figure:
    """One line per variant: unwanted / wanted energy (dB) against the tone's frequency."""
    if len(sweeps) == 0:
        raise ValueError("sweeps must hold at least one variant, got an empty mapping")
    fig = Figure(figsize=FIGURE_SIZE)
    ax = fig.add_subplot()
    for name, reports in sweeps.items():
        ax.plot([r.frequency for r in reports], [r.aliasing_db for r in reports], marker="o",
                label=name)
    ax.set_xlabel("tone frequency (cycles per input sample)")
    ax.set_ylabel("unwanted / wanted energy (dB)")
    ax.set_title(title)
    ax.legend(fontsize="small")
    fig.tight_layout()
    return fig


def plot_aliasing_spectrum(report: AliasingReport, title: str = "Output spectrum") -> Figure:
    """The block's output power (dB re its peak), wanted bins (DC, tone, harmonics) marked."""
    fig = Figure(figsize=FIGURE_SIZE)
    ax = fig.add_subplot()
    power_db = 10 * np.log10(report.power / report.power.max() + POWER_EPS)
    ax.plot(report.frequencies, power_db, linewidth=0.8, label="output")
    ax.plot(report.frequencies[report.wanted], power_db[report.wanted], "o", markersize=3,
            label="wanted (DC, tone, harmonics)")
    ax.set_xlabel("frequency (cycles per input sample)")
    ax.set_ylabel("power (dB re peak)")
    ax.set_title(f"{title}: tone {report.frequency:.3f}, aliasing {report.aliasing_db:.1f} dB")
    ax.legend(fontsize="small")
    fig.tight_layout()
    return fig
