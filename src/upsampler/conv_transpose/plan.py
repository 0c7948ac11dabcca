"""Where each kernel tap of a transposed convolution lands, per shape, computed once.

The output ``(B, C, L)`` is viewed as frames of ``stride`` samples (position
``f * stride + r`` is frame ``f``, phase ``r``). Tap ``k`` lands in frame ``t + a_k`` at
phase ``r_k`` with ``a_k, r_k = divmod(k * dilation - padding, stride)``; consecutive taps
sharing ``a_k`` form a run that fills phases ``r, r + dilation, ...`` of the same frames.
The plans depend only on integers, so they are cached: a layer called on the same length
again reuses its plan.
"""

from __future__ import annotations

from functools import lru_cache
from typing import List, Tuple

import torch
from torch import Tensor

from upsampler.lengths import ceil_div

PLAN_CACHE_SIZE = 512  # distinct (kernel, length, stride, padding, ...) shapes kept

# One run of taps: (first tap, taps, frame offset a, first phase r0).
Run = Tuple[int, int, int, int]
# One block of the in-place scatter/gather: a run with its input range and the partial last
# frame: (first tap, taps, a, r0, t0, t1, taps reaching the partial frame, step reaching it).
Block = Tuple[int, int, int, int, int, int, int, int]


def frame_layout(
    kernel_size: int, stride: int, padding: int, output_padding: int, dilation: int
) -> Tuple[int, int]:
    """``L_out - T * stride`` as ``(whole frames, remaining samples)``; independent of ``T``."""
    excess = dilation * (kernel_size - 1) + 1 + output_padding - 2 * padding - stride
    return excess // stride, excess % stride


def output_length(
    length: int, kernel_size: int, stride: int, padding: int, output_padding: int, dilation: int
) -> int:
    """``L_out`` of a ``length``-step input from :func:`frame_layout` (unchecked, for the ops)."""
    extra_frames, remainder = frame_layout(kernel_size, stride, padding, output_padding, dilation)
    return (length + extra_frames) * stride + remainder


def compute_tap_runs(kernel_size: int, stride: int, padding: int, dilation: int) -> List[Run]:
    """Taps grouped into runs that share a frame offset, in tap order."""
    runs: List[Run] = []
    k0 = 0
    while k0 < kernel_size:
        a, r0 = divmod(k0 * dilation - padding, stride)
        m = 1
        while k0 + m < kernel_size and (k0 + m) * dilation - padding < (a + 1) * stride:
            m += 1
        runs.append((k0, m, a, r0))
        k0 += m
    return runs


def compute_tap_blocks(
    kernel_size: int, length: int, stride: int, padding: int, output_padding: int, dilation: int
) -> Tuple[List[Block], int]:
    """Runs as strided blocks over ``T = length`` steps, and the one covering the output (or -1).

    Run taps ``k0 .. k0 + m - 1`` share frame offset ``a``: input step ``t`` in
    ``[t0, t1)`` lands in full frame ``t + a`` at phases ``r0, r0 + dilation, ...``; the
    first ``mt`` of them reach the partial last frame from input step ``t_tail``. A block
    covering every output sample (``a <= 0``, every phase, every frame) may initialise the
    output instead of zeros; it is moved first.
    """
    extra_frames, remainder = frame_layout(kernel_size, stride, padding, output_padding, dilation)
    blocks: List[Block] = []
    cover = -1
    for k0, m, a, r0 in compute_tap_runs(kernel_size, stride, padding, dilation):
        t0 = max(0, -a)
        t1 = max(length + min(extra_frames, a) - a, t0)
        t_tail = length + extra_frames - a
        mt = 0
        if remainder > 0 and r0 < remainder and 0 <= t_tail < length:
            mt = min(m, ceil_div(remainder - r0, dilation))
        covers_frames = a <= 0 and extra_frames <= a and m == stride and dilation == 1
        if cover < 0 and covers_frames and (remainder == 0 or mt == remainder):
            cover = len(blocks)
        blocks.append((k0, m, a, r0, t0, t1, mt, t_tail))
    if cover > 0:
        blocks.insert(0, blocks.pop(cover))
        cover = 0
    return blocks, cover


# The cached lists are shared between calls: callers only read them.
_cached_runs = lru_cache(maxsize=PLAN_CACHE_SIZE)(compute_tap_runs)
_cached_blocks = lru_cache(maxsize=PLAN_CACHE_SIZE)(compute_tap_blocks)


def tap_runs(kernel_size: int, stride: int, padding: int, dilation: int) -> List[Run]:
    """:func:`compute_tap_runs`, cached."""
    return _cached_runs(kernel_size, stride, padding, dilation)


def tap_blocks(
    kernel_size: int, length: int, stride: int, padding: int, output_padding: int, dilation: int
) -> Tuple[List[Block], int]:
    """:func:`compute_tap_blocks`, cached for a plain-int length (a trace records the length
    as a tensor, which is planned afresh rather than kept in the cache)."""
    if type(length) is int:
        return _cached_blocks(kernel_size, length, stride, padding, output_padding, dilation)
    return compute_tap_blocks(kernel_size, length, stride, padding, output_padding, dilation)

def split_frames(signal: Tensor, length: int, extra_frames: int, stride: int) -> Tuple[Tensor, Tensor]:
    """``(B, C, L) -> (B, C, F, stride)`` full frames and the ``(B, C, L - F * stride)`` tail."""
    batch, channels, _ = signal.shape
    frames = length + extra_frames
    full = signal[:, :, : frames * stride].view(batch, channels, frames, stride)
    return full, signal[:, :, frames * stride :]


@lru_cache(maxsize=PLAN_CACHE_SIZE)
def positions(
    kernel_size: int, length: int, stride: int, padding: int, output_padding: int,
    dilation: int, device: torch.device,
) -> Tensor:
    """``(K * T,)`` output positions of the columns in ``(k, t)`` order; dropped ones -> ``L_out``."""
    out_length = output_length(length, kernel_size, stride, padding, output_padding, dilation)
    taps = torch.arange(kernel_size).view(-1, 1) * dilation - padding
    where = (taps + torch.arange(length).view(1, -1) * stride).flatten()
    where[(where < 0) | (where >= out_length)] = out_length
    return where.to(device)


__all__ = [
    "Block", "PLAN_CACHE_SIZE", "Run", "compute_tap_blocks", "compute_tap_runs", "frame_layout",
    "output_length", "positions", "split_frames", "tap_blocks", "tap_runs",
]
