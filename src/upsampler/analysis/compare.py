"""The literature comparison: HiFi-GAN V1's upsampling stack built from each upsampler kind.

:func:`compare_upsamplers` builds the V1 stack (strides 8, 8, 2, 2 at 22.05 kHz) once per
:class:`UpsamplerVariant` and seed, at random initialisation (each layer's default init),
with activations off, and measures

* ``overlap_ratio``: max/min of the stack's steady-state overlap map
  (:func:`~upsampler.analysis.overlap.stack_overlap_map`), transposed kinds only
  (``nan`` otherwise: a resize or subpixel layer has no overlapping taps);
* ``phase_gain_cv``: median over channel pairs of the coefficient of variation of the
  stack's effective phase gains (:func:`~upsampler.analysis.response.stack_response`),
  averaged over seeds;
* ``summary_db`` (mean, min and max over seeds) and ``noise_summary_db`` (mean) from
  :func:`~upsampler.analysis.tonal.tonal_artifacts`.

Channels default to ``REDUCED_CHANNELS`` (32, 16, 8, 4, 2) instead of V1's
(512, 256, 128, 64, 32) so the whole table takes about a second; pass ``channels`` to
change it. The literature's findings (Odena 2016, Pons 2021, Aitken 2017): transposed and
plain subpixel stacks are tonal at initialisation; nearest/linear resize-convolution and
ICNR subpixel are not; ``k`` not a multiple of ``s`` overlaps unevenly, ``k = 2s`` does not.
"""

from __future__ import annotations

import math
from typing import NamedTuple, Optional, Sequence

import numpy as np
import torch
from torch import nn

from upsampler.analysis.overlap import overlap_ratio, stack_overlap_map
from upsampler.analysis.response import stack_response
from upsampler.analysis.tonal import tonal_artifacts
from upsampler.layers.upsamplers import make_upsampler

V1_STRIDES = (8, 8, 2, 2)
V1_KERNEL_SIZES = (16, 16, 4, 4)  # k = 2s
UNEVEN_KERNEL_SIZES = (12, 12, 3, 3)  # k = 1.5s: not a multiple of s
V1_SAMPLE_RATE = 22050.0
REDUCED_CHANNELS = (32, 16, 8, 4, 2)
DEFAULT_SEEDS = (0, 1, 2)
OVERLAP_FRAMES = 8  # input frames fed to the overlap map
OVERLAP_EDGE_FRAMES = 3  # frames of the overlap map dropped at each end (ramps)


class UpsamplerVariant(NamedTuple):
    """One row of the comparison: a display name, a ``make_upsampler`` kind, kernel sizes."""

    name: str
    kind: str
    kernel_sizes: tuple[int, ...]


LITERATURE_VARIANTS = (
    UpsamplerVariant("transposed k=2s", "transposed", V1_KERNEL_SIZES),
    UpsamplerVariant("transposed k=1.5s", "transposed", UNEVEN_KERNEL_SIZES),
    UpsamplerVariant("nearest+conv", "nearest_conv", V1_KERNEL_SIZES),
    UpsamplerVariant("linear+conv", "linear_conv", V1_KERNEL_SIZES),
    UpsamplerVariant("subpixel", "subpixel", V1_KERNEL_SIZES),
    UpsamplerVariant("subpixel+ICNR", "subpixel_icnr", V1_KERNEL_SIZES),
)


def build_stack(
    kind: str, strides: Sequence[int], kernel_sizes: Sequence[int], channels: Sequence[int]
) -> nn.Sequential:
    """``nn.Sequential`` of ``make_upsampler`` layers, ``channels[l] -> channels[l + 1]``."""
    if not len(strides) == len(kernel_sizes) == len(channels) - 1:
        raise ValueError(
            f"need one kernel size per stride and len(strides) + 1 channel counts, got "
            f"strides={tuple(strides)}, kernel_sizes={tuple(kernel_sizes)}, "
            f"channels={tuple(channels)}"
        )
    return nn.Sequential(
        *(
            make_upsampler(kind, channels[i], channels[i + 1], stride, kernel_size)
            for i, (stride, kernel_size) in enumerate(zip(strides, kernel_sizes))
        )
    )


def _overlap_ratio(variant: UpsamplerVariant, strides: Sequence[int]) -> float:
    if variant.kind != "transposed":
        return math.nan
    counts = stack_overlap_map(variant.kernel_sizes, strides, OVERLAP_FRAMES)
    return overlap_ratio(counts, math.prod(strides), OVERLAP_EDGE_FRAMES * math.prod(strides))


def compare_upsamplers(
    variants: Sequence[UpsamplerVariant] = LITERATURE_VARIANTS,
    strides: Sequence[int] = V1_STRIDES,
    channels: Sequence[int] = REDUCED_CHANNELS,
    sample_rate: float = V1_SAMPLE_RATE,
    seeds: Sequence[int] = DEFAULT_SEEDS,
    num_frames: Optional[int] = None,
) -> list[dict[str, object]]:
    """One row per variant: name, kind, kernel_sizes, overlap_ratio, phase_gain_cv,
    summary_db, summary_db_min, summary_db_max, noise_summary_db, per_seed_db (list).

    ``torch.manual_seed(seed)`` precedes each stack's construction, so rows are
    reproducible. See the module docstring for each column.
    """
    if len(seeds) == 0:
        raise ValueError("seeds must hold at least one seed, got an empty sequence")
    rows = []
    for variant in variants:
        per_seed, noise, cvs = [], [], []
        for seed in seeds:
            torch.manual_seed(seed)
            stack = build_stack(variant.kind, strides, variant.kernel_sizes, channels)
            report = tonal_artifacts(stack, sample_rate, num_frames=num_frames, seed=seed)
            per_seed.append(report.summary_db)
            noise.append(report.noise_summary_db)
            cvs.append(stack_response(stack, sample_rate).imbalance.median_cv)
        rows.append(
            {
                "name": variant.name,
                "kind": variant.kind,
                "kernel_sizes": tuple(variant.kernel_sizes),
                "overlap_ratio": _overlap_ratio(variant, strides),
                "phase_gain_cv": float(np.mean(cvs)),
                "summary_db": float(np.mean(per_seed)),
                "summary_db_min": float(np.min(per_seed)),
                "summary_db_max": float(np.max(per_seed)),
                "noise_summary_db": float(np.mean(noise)),
                "per_seed_db": per_seed,
            }
        )
    return rows


TABLE_COLUMNS = (  # (row key, width, format spec)
    ("name", 18, "<"),
    ("overlap_ratio", 13, ">.2f"),
    ("phase_gain_cv", 13, ">.3g"),
    ("summary_db", 10, ">.1f"),
    ("summary_db_min", 14, ">.1f"),
    ("noise_summary_db", 16, ">.1f"),
)


def format_table(rows: Sequence[dict[str, object]]) -> str:
    """Plain-text table of :func:`compare_upsamplers` rows (one header line, one per row)."""
    header = "  ".join(f"{key:{'<' if i == 0 else '>'}{width}}"
                       for i, (key, width, _) in enumerate(TABLE_COLUMNS))
    lines = [header]
    for row in rows:
        lines.append("  ".join(f"{row[key]:{spec[0]}{width}{spec[1:]}}"
                               for key, width, spec in TABLE_COLUMNS))
    return "\n".join(lines)
