"""Overlap maps: how many kernel taps reach each output sample of a transposed convolution.

Input sample ``t`` and tap ``k`` land on output ``t * stride + k * dilation - padding``
(torch's ``conv_transpose1d`` definition). Feeding all-ones through all-ones kernels
therefore counts, for every output sample, the (input, tap) pairs that reach it::

    kernel [1, 1, 1], input [1, 1, 1, 1], stride 1:  [1, 2, 3, 3, 2, 1]
    kernel [1, 1, 1], input [1, 1, 1, 1], stride 2:  [1, 1, 2, 1, 2, 1, 2, 1, 1]
                                                         ^ uneven: 2, 1, 2, 1 ...

Away from the edges the count only depends on the output phase ``n mod stride``
(:func:`phase_overlap`); it is even exactly when ``kernel_size * dilation`` spreads the
taps evenly over the phases, e.g. ``k = 2s`` (Odena et al. 2016). For a stack the counts
multiply along every path, so uneven overlap compounds (:func:`stack_overlap_map`).
Everything here is integer arithmetic on numpy arrays.
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from upsampler.lengths import check_int, exact_padding, transposed_output_length


def _scatter_taps(
    values: np.ndarray,
    kernel_size: int,
    stride: int,
    padding: int,
    output_padding: int,
    dilation: int,
) -> np.ndarray:
    """All-ones-kernel transposed conv of integer ``values`` (length ``L_in``)."""
    length = transposed_output_length(
        len(values), kernel_size, stride, padding, output_padding, dilation
    )
    inputs = np.arange(len(values))[:, None]
    taps = np.arange(kernel_size)[None, :]
    positions = inputs * stride + taps * dilation - padding  # (L_in, K)
    contributions = np.broadcast_to(values[:, None], positions.shape)
    keep = (positions >= 0) & (positions < length)
    counts = np.zeros(length, dtype=np.int64)
    np.add.at(counts, positions[keep], contributions[keep])
    return counts


def overlap_map(
    kernel_size: int,
    stride: int,
    length: int,
    padding: int = 0,
    output_padding: int = 0,
    dilation: int = 1,
) -> np.ndarray:
    """Taps reaching each output sample of one transposed conv fed ``length`` input samples.

    Returns an int64 array of the layer's output length (torch's formula with these
    arguments). ``overlap_map(3, 2, 4, padding=1)`` is ``[1, 2, 1, 2, 1, 2, 1]``.
    """
    check_int("kernel_size", kernel_size, 1)
    check_int("stride", stride, 1)
    check_int("length", length, 1)
    check_int("dilation", dilation, 1)
    ones = np.ones(length, dtype=np.int64)
    return _scatter_taps(ones, kernel_size, stride, padding, output_padding, dilation)


def stack_overlap_map(
    kernel_sizes: Sequence[int],
    strides: Sequence[int],
    length: int,
    dilations: Optional[Sequence[int]] = None,
) -> np.ndarray:
    """Tap paths reaching each output sample of a stack of transposed convs.

    Each layer uses the padding ``make_upsampler("transposed", ...)`` gives it
    (``exact_padding``), so the result has ``length * prod(strides)`` samples. The count
    at an output sample is the number of (input sample, tap of layer 1, ..., tap of
    layer L) paths that end there: the layers' overlaps multiplied along each path.
    """
    if len(kernel_sizes) != len(strides):
        raise ValueError(
            f"kernel_sizes and strides must have the same length, got "
            f"{len(kernel_sizes)} and {len(strides)}"
        )
    if len(strides) == 0:
        raise ValueError("strides must name at least one layer, got an empty sequence")
    dilations = tuple(dilations) if dilations is not None else (1,) * len(strides)
    if len(dilations) != len(strides):
        raise ValueError(
            f"dilations must have one entry per layer ({len(strides)}), got {len(dilations)}"
        )
    check_int("length", length, 1)
    counts = np.ones(length, dtype=np.int64)
    for kernel_size, stride, dilation in zip(kernel_sizes, strides, dilations):
        check_int("stride", stride, 1)
        padding, output_padding = exact_padding(kernel_size, stride, dilation)
        counts = _scatter_taps(counts, kernel_size, stride, padding, output_padding, dilation)
    return counts


def phase_overlap(kernel_size: int, stride: int, dilation: int = 1, padding: int = 0) -> np.ndarray:
    """Steady-state taps per output phase ``r = n mod stride``: shape ``(stride,)``.

    Tap ``k`` feeds phase ``(k * dilation - padding) mod stride``. ``phase_overlap(3, 2)``
    is ``[2, 1]``; ``phase_overlap(16, 8)`` is eight 2s.
    """
    check_int("kernel_size", kernel_size, 1)
    check_int("stride", stride, 1)
    check_int("dilation", dilation, 1)
    phases = (np.arange(kernel_size) * dilation - padding) % stride
    return np.bincount(phases, minlength=stride).astype(np.int64)


def overlap_ratio(counts: np.ndarray, period: int, edge: int = 0) -> float:
    """Largest over smallest count of an overlap map's interior, one ``period`` averaged.

    ``edge`` samples are dropped at each end first (boundary ramps are not artifacts).
    The counts are summed per phase ``n mod period`` over the interior, which must hold
    whole periods. 1.0 means even overlap; ``inf`` when a phase gets no tap at all.
    """
    check_int("period", period, 1)
    check_int("edge", edge, 0)
    interior = np.asarray(counts)[edge : len(counts) - edge]
    if len(interior) < period or len(interior) % period != 0:
        raise ValueError(
            f"the interior of the overlap map ({len(interior)} samples after dropping "
            f"edge={edge} at each end) must be a non-zero multiple of period={period}"
        )
    # (L,) -> (L / period, period): one row per period
    per_phase = interior.reshape(-1, period).sum(axis=0)
    smallest = per_phase.min()
    return float("inf") if smallest == 0 else float(per_phase.max() / smallest)
