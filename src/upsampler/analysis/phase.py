"""Per-phase gains of a transposed-conv weight: the polyphase view of checkerboard tones.

A stride-``s`` transposed conv is ``s`` interleaved ordinary convolutions. Tap ``k`` of the
kernel from input channel ``i`` to output channel ``o`` feeds output phase
``r = (k * dilation - padding) mod s``, so a constant input ``c`` on channel ``i`` gives
phase ``r`` of channel ``o`` the value ``c * G[i, o, r]`` (plus bias) away from the edges,
with ``G[i, o, r]`` the sum of the taps landing on phase ``r``. Equal phase gains mean a
constant input gives a constant output; unequal ones give a period-``s`` pattern, i.e.
tones at ``m * fs_out / s`` (Pons et al. 2021). Kernel ``[1, 1, 1]`` at stride 2 has
gains ``[2, 1]``: ratio 2, coefficient of variation 1/3.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from upsampler.lengths import check_int


def phase_gains(
    weight: Tensor | np.ndarray, stride: int, dilation: int = 1, padding: int = 0
) -> np.ndarray:
    """Sum of taps per output phase: ``(C_in, C_out, K)`` weight -> ``(C_in, C_out, stride)``.

    ``weight`` has torch's transposed-conv layout ``(in_channels, out_channels // groups,
    kernel_size)``; a 1-D kernel ``(K,)`` is read as ``(1, 1, K)``. Returns float64.
    """
    check_int("stride", stride, 1)
    check_int("dilation", dilation, 1)
    check_int("padding", padding, 0)
    taps = weight.detach().cpu().double().numpy() if isinstance(weight, Tensor) else weight
    taps = np.asarray(taps, dtype=np.float64)
    if taps.ndim == 1:
        taps = taps[None, None, :]  # (K,) -> (1, 1, K)
    if taps.ndim != 3 or taps.shape[-1] == 0:
        raise ValueError(
            f"weight must be (C_in, C_out, K) or (K,) with K >= 1, got shape {taps.shape}"
        )
    phase_of_tap = (np.arange(taps.shape[-1]) * dilation - padding) % stride
    gains = np.zeros(taps.shape[:2] + (stride,))
    for phase in range(stride):
        gains[..., phase] = taps[..., phase_of_tap == phase].sum(axis=-1)
    return gains


@dataclass(frozen=True)
class PhaseImbalance:
    """How unequal the phase gains are, per (input, output) channel pair.

    ``max_min_ratio[i, o] = max_r |G| / min_r |G|`` (``inf`` when a phase gain is 0);
    ``coefficient_of_variation[i, o] = std_r(G) / mean_r(|G|)`` (population std; 0 when
    every gain is 0). Both are 1 and 0 for perfectly even phases.
    """

    max_min_ratio: np.ndarray
    coefficient_of_variation: np.ndarray

    @property
    def median_ratio(self) -> float:
        """Median over channel pairs of ``max_min_ratio``."""
        return float(np.median(self.max_min_ratio))

    @property
    def median_cv(self) -> float:
        """Median over channel pairs of ``coefficient_of_variation``."""
        return float(np.median(self.coefficient_of_variation))


def phase_imbalance(gains: np.ndarray) -> PhaseImbalance:
    """Imbalance of phase gains ``(..., stride)`` (last axis = phase), per leading index."""
    gains = np.asarray(gains, dtype=np.float64)
    if gains.ndim == 0 or gains.shape[-1] == 0:
        raise ValueError(f"gains must have a non-empty last (phase) axis, got {gains.shape}")
    magnitude = np.abs(gains)
    largest, smallest = magnitude.max(axis=-1), magnitude.min(axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(smallest > 0, largest / np.where(smallest > 0, smallest, 1.0), np.inf)
        ratio = np.where(largest == 0, 1.0, ratio)
        scale = magnitude.mean(axis=-1)
        spread = gains.std(axis=-1)
        cv = np.where(scale > 0, spread / np.where(scale > 0, scale, 1.0), 0.0)
    return PhaseImbalance(max_min_ratio=ratio, coefficient_of_variation=cv)


def layer_phase_gains(layer: torch.nn.Module) -> np.ndarray:
    """:func:`phase_gains` of a transposed-conv layer (ours or torch's), from its attributes."""
    for name in ("weight", "stride", "padding", "dilation"):
        if not hasattr(layer, name):
            raise ValueError(
                f"layer must be a transposed convolution with weight/stride/padding/dilation, "
                f"got {type(layer).__name__} without {name!r}"
            )
    if not getattr(layer, "transposed", False):
        raise ValueError(
            f"layer must be a transposed convolution, got {type(layer).__name__}; for other "
            f"upsamplers use upsampler.analysis.stack_response(...).phase_gains"
        )
    return phase_gains(layer.weight, layer.stride[0], layer.dilation[0], layer.padding[0])
