"""BigVGAN's Kaiser-windowed sinc low-pass filters, and their ratio-2 polyphase block matrices.

Pure arithmetic on small tensors; the modules that apply them live in
:mod:`upsampler.layers.antialias`. ``kaiser_sinc_filter1d`` designs the filter (12 taps for
ratio 2, cutoff ``0.5 / ratio``, half transition width ``0.6 / ratio``, unit DC gain).

``up_block_matrix`` and ``down_block_matrix`` write the ratio-2, 12-tap resampling of a block
of ``block`` samples as one matrix product, so a whole signal resamples as two matrix
products over its blocks (``block_product``; see ``Activation1d``): a dense GEMM does the 6
taps of both phases, which CPU kernels run several times faster than a depthwise convolution
of the same taps.
"""

from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor

from upsampler.lengths import check_int

TAPS_PER_RATIO = 6  # BigVGAN's kernel_size = int(6 * ratio // 2) * 2: 12 taps at ratio 2
CUTOFF_PER_RATIO = 0.5  # cutoff 0.5 / ratio, in cycles per sample at the high rate
HALF_WIDTH_PER_RATIO = 0.6  # half transition width 0.6 / ratio
# Kaiser's empirical beta for a stop-band attenuation of A dB (Oppenheim & Schafer 7.62)
KAISER_HIGH_A, KAISER_LOW_A = 50.0, 21.0

# The block matrices are derived for BigVGAN's only setting: ratio 2 both ways, 12 taps.
POLYPHASE_RATIO = 2
POLYPHASE_KERNEL_SIZE = 12
PHASE_TAPS = POLYPHASE_KERNEL_SIZE // POLYPHASE_RATIO  # 6 non-zero taps per output phase
UP_OVERLAP = PHASE_TAPS - 1  # input samples a block of pairs reads beyond its own: 5
DOWN_OVERLAP = POLYPHASE_KERNEL_SIZE - POLYPHASE_RATIO  # high-rate samples beyond a block: 10
MIN_BLOCK = UP_OVERLAP  # a block's successor must hold the overlap (5 low-rate, 10 high-rate)


def default_kernel_size(ratio: int) -> int:
    """BigVGAN's filter length for a resampling ratio: ``int(6 * ratio // 2) * 2``."""
    check_int("ratio", ratio, 1)
    return int(TAPS_PER_RATIO * ratio // 2) * 2


def kaiser_beta(attenuation_db: float) -> float:
    """Kaiser window beta for ``attenuation_db`` of stop-band attenuation."""
    if attenuation_db > KAISER_HIGH_A:
        return 0.1102 * (attenuation_db - 8.7)
    if attenuation_db >= KAISER_LOW_A:
        excess = attenuation_db - KAISER_LOW_A
        return 0.5842 * excess**0.4 + 0.07886 * excess
    return 0.0


def kaiser_attenuation(kernel_size: int, half_width: float) -> float:
    """The attenuation BigVGAN assumes: ``2.285 * (K // 2 - 1) * pi * 4 * half_width + 7.95``."""
    return 2.285 * (kernel_size // 2 - 1) * math.pi * (4 * half_width) + 7.95


def kaiser_sinc_filter1d(cutoff: float, half_width: float, kernel_size: int) -> Tensor:
    """Kaiser-windowed sinc low-pass, ``(1, 1, kernel_size)``, taps summing to 1.

    ``cutoff`` and ``half_width`` are in cycles per sample (0.5 = Nyquist). Even kernels
    put their taps at ``+-0.5, +-1.5, ...`` samples from the centre, odd ones on integers.
    Designed in float32 as BigVGAN designs it, so the taps equal the buffers its
    checkpoints store (a float64 design differs by up to 3e-8); returned in the default dtype.
    """
    check_int("kernel_size", kernel_size, 2)
    if not 0.0 < cutoff <= 0.5:
        raise ValueError(f"cutoff must be in (0, 0.5] cycles per sample, got {cutoff}")
    half_size = kernel_size // 2
    beta = kaiser_beta(kaiser_attenuation(kernel_size, half_width))
    window = torch.kaiser_window(
        kernel_size, periodic=False, beta=beta, dtype=torch.float32, device="cpu"
    )
    if kernel_size % 2 == 0:
        time = torch.arange(-half_size, half_size, dtype=torch.float32, device="cpu") + 0.5
    else:
        time = torch.arange(kernel_size, dtype=torch.float32, device="cpu") - half_size
    taps = 2 * cutoff * window * torch.sinc(2 * cutoff * time)
    taps = taps / taps.sum()
    return taps.to(torch.get_default_dtype()).view(1, 1, kernel_size)


def ratio_filter(ratio: int, kernel_size: int) -> Tensor:
    """The low-pass BigVGAN designs for resampling by ``ratio``: ``(1, 1, kernel_size)``."""
    return kaiser_sinc_filter1d(
        CUTOFF_PER_RATIO / ratio, HALF_WIDTH_PER_RATIO / ratio, kernel_size
    )


def _check_polyphase_filter(name: str, taps: Tensor) -> Tensor:
    if taps.numel() != POLYPHASE_KERNEL_SIZE:
        raise ValueError(
            f"{name} must hold {POLYPHASE_KERNEL_SIZE} taps, got shape {tuple(taps.shape)}"
        )
    return taps.reshape(-1)


def up_phase_taps(filter: Tensor, gain: float) -> Tensor:
    """``(2, 6)``: the taps of ``gain * filter`` that give ``y[2j - 1]`` and ``y[2j]`` from the
    six inputs ``x[j-3 .. j+2]``, in input order (the filter flipped: a correlation)::

        row 0 (y[2j - 1]): gain * filter[10, 8, .., 0]
        row 1 (y[2j]):     gain * filter[11, 9, .., 1]
    """
    taps = filter.reshape(-1).flip(0) * gain  # taps 11 .. 0 (TorchScript compiles this)
    return torch.stack([taps[1::2], taps[0::2]])


def up_block_matrix(filter: Tensor, block: int, gain: float = POLYPHASE_RATIO) -> Tensor:
    """``(block + 5, 2 * block)``: ``block`` pairs of the x2 upsampled signal from
    ``block + 5`` inputs.

    The upsampled signal ``y`` (``gain * filter`` as a stride-2 transposed conv, cut as
    ``UpSample1d`` cuts it) pairs sample ``2j - 1`` with ``2j``, and both come from the six
    inputs ``x[j-3 .. j+2]``: ``y[2j - 1]`` from the odd taps, ``y[2j]`` from the even taps,
    in reverse order. Row ``s`` is input ``s`` of the block, column ``2r + q`` output ``q``
    of pair ``r``, so a row of blocks times this matrix is ``y`` in time order::

        y[2j - 1] = sum_m gain * filter[10 - 2m] * x[j - 3 + m],  m = 0 .. 5
        y[2j]     = sum_m gain * filter[11 - 2m] * x[j - 3 + m]
    """
    check_int("block", block, MIN_BLOCK)
    phases = up_phase_taps(_check_polyphase_filter("filter", filter), gain)  # (2, 6)
    matrix = phases.new_zeros(block + UP_OVERLAP, POLYPHASE_RATIO * block)
    for pair in range(block):
        for phase in range(POLYPHASE_RATIO):
            matrix[pair : pair + PHASE_TAPS, POLYPHASE_RATIO * pair + phase] = phases[phase]
    return matrix


def down_block_matrix(filter: Tensor, block: int) -> Tensor:
    """``(2 * block + 10, block)``: ``block`` outputs of the stride-2 low-pass from
    ``2 * block + 10`` high-rate inputs, output ``r`` reading inputs ``2r .. 2r + 11``::

        out[r] = sum_k filter[k] * z[2r + k],  k = 0 .. 11
    """
    check_int("block", block, MIN_BLOCK)
    taps = _check_polyphase_filter("filter", filter)
    matrix = taps.new_zeros(POLYPHASE_RATIO * block + DOWN_OVERLAP, block)
    for out in range(block):
        start = POLYPHASE_RATIO * out
        matrix[start : start + POLYPHASE_KERNEL_SIZE, out] = taps
    return matrix


def block_product(
    blocks: Tensor, matrix: Tensor, overlap: int, fresh: bool, out: Optional[Tensor] = None
) -> Tensor:
    """Row ``i`` of ``blocks`` with the first ``overlap`` samples of row ``i + 1``, times
    ``matrix`` (``(W + overlap, N_out)``); the last row, which has no successor, gives zeros.
    ``(N, W) -> (N, N_out)``. ``fresh`` (nothing records autograd) writes into ``out`` (a new
    buffer if None; it must not overlap ``blocks``) with ``mm(out=)`` and ``addmm_``.
    """
    width = blocks.shape[1]
    head, tail = matrix[:width], matrix[width:]
    current, following = blocks[:-1], blocks[1:, :overlap]
    if fresh:
        if out is None:
            out = blocks.new_empty(blocks.shape[0], matrix.shape[1])
        torch.mm(current, head, out=out[:-1])
        out[:-1].addmm_(following, tail)
        out[-1].zero_()
        return out
    product = torch.addmm(torch.mm(following, tail), current, head)
    return F.pad(product, (0, 0, 0, 1))  # the zero last row


def phase_weights(
    up_filter: Tensor, down_filter: Tensor, channels: int, up_gain: float
) -> tuple[Tensor, Tensor]:
    """The ratio-2, 12-tap filters as depthwise weights per phase, each ``(2, C, 1, 6)``.

    Pair output sample ``2j - 1`` with ``2j``: both come from inputs ``x[j-3 .. j+2]``, the
    odd taps of ``up_gain * filter`` (flipped, as a correlation) giving ``y[2j]`` and the
    even taps ``y[2j - 1]``; the down filter's even taps read the odd member, its odd taps
    the even member. Up weights: ``[y[2j - 1], y[2j]]``; down weights: for those members.
    """
    up_pair = up_phase_taps(up_filter, up_gain)  # (2, 6)
    down = down_filter.reshape(-1)
    down_pair = torch.stack([down[0::2], down[1::2]])  # (2, 6): taps 0, 2 .. 10 and 1 .. 11
    # (2, 6) -> (2, C, 1, 6)
    return (up_pair.unsqueeze(1).repeat(1, channels, 1).unsqueeze(2),
            down_pair.unsqueeze(1).repeat(1, channels, 1).unsqueeze(2))


def replicate_pad(x: Tensor, left: int, right: int, fresh: bool) -> Tensor:
    """``(B, C, T) -> (B, C, left + T + right)``, the edge samples repeated. ``fresh``
    (nothing records autograd) copies three times into a new buffer, faster on CPU than
    torch's replicate pad; otherwise ``F.pad`` (which exports)."""
    if not fresh:
        return F.pad(x, (left, right), mode="replicate")
    length = x.shape[-1]
    padded = x.new_empty(x.shape[0], x.shape[1], left + length + right)
    padded.narrow(-1, left, length).copy_(x)
    padded.narrow(-1, 0, left).copy_(x.narrow(-1, 0, 1))
    padded.narrow(-1, left + length, right).copy_(x.narrow(-1, length - 1, 1))
    return padded


__all__ = [
    "block_product", "default_kernel_size", "down_block_matrix", "kaiser_attenuation",
    "kaiser_beta", "kaiser_sinc_filter1d", "phase_weights", "ratio_filter", "replicate_pad",
    "up_block_matrix", "up_phase_taps",
]
