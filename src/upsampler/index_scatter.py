"""The overlap-add as one indexed add, for short inputs where per-op overhead dominates.

Column ``(k, t)`` lands at output position ``t * stride + k * dilation - padding``; positions
outside ``[0, L_out)`` go to one spare slot past the end, which is cut off. The scatter is
then a single ``index_add_`` over ``K * T`` columns and its adjoint a single
``index_select``, whatever the number of tap runs: a handful of ops per call instead of a
few per run. The position tensor depends only on the shape, so it is built once per shape
and device. Eager only (graph capture keeps the strided-block scatter of
:mod:`upsampler.columns`).
"""

from __future__ import annotations

from functools import lru_cache

import torch
from torch import Tensor

from upsampler.plan import PLAN_CACHE_SIZE, frame_layout

# Calls with at most this many column values (B * C_out * K * T) take the indexed add: the
# measured crossover with the strided-block scatter on 2 CPU threads (recipes/benchmark.py,
# section "crossover": 0.8-0.9x at 4-16 k values, 1.0-1.1x at 32 k, 2x at 64 k); beyond it
# the indexed add's per-element cost loses to the strided adds.
INDEX_SCATTER_MAX_COLUMNS = 16384


def use_index_scatter(batch: int, channels: int, kernel_size: int, length: int) -> bool:
    """Whether ``B * C_out * K * T`` column values are few enough for the indexed add."""
    return batch * channels * kernel_size * length <= INDEX_SCATTER_MAX_COLUMNS


@lru_cache(maxsize=PLAN_CACHE_SIZE)
def positions(
    kernel_size: int,
    length: int,
    stride: int,
    padding: int,
    output_padding: int,
    dilation: int,
    device: torch.device,
) -> Tensor:
    """``(K * T,)`` output positions of the columns in ``(k, t)`` order; dropped ones -> ``L_out``."""
    extra_frames, remainder = frame_layout(kernel_size, stride, padding, output_padding, dilation)
    out_length = (length + extra_frames) * stride + remainder
    taps = torch.arange(kernel_size).view(-1, 1) * dilation - padding
    where = (taps + torch.arange(length).view(1, -1) * stride).flatten()
    where[(where < 0) | (where >= out_length)] = out_length
    return where.to(device)


def index_scatter(
    cols: Tensor, stride: int, padding: int, output_padding: int, dilation: int
) -> Tensor:
    """``(B, C, K, T)`` contiguous columns -> ``(B, C, L_out)``, one ``index_add_``."""
    batch, channels, kernel_size, length = cols.shape
    where = positions(kernel_size, length, stride, padding, output_padding, dilation, cols.device)
    extra_frames, remainder = frame_layout(kernel_size, stride, padding, output_padding, dilation)
    out = cols.new_zeros((batch, channels, (length + extra_frames) * stride + remainder + 1))
    out.index_add_(2, where, cols.view(batch, channels, kernel_size * length))
    return out[:, :, :-1]


def index_gather(
    grad_output: Tensor,
    kernel_size: int,
    length: int,
    stride: int,
    padding: int,
    output_padding: int,
    dilation: int,
) -> Tensor:
    """The adjoint: ``(B, C, L_out) -> (B, C, K, T)``, one ``index_select`` (spare slot zero)."""
    batch, channels, _ = grad_output.shape
    where = positions(kernel_size, length, stride, padding, output_padding, dilation, grad_output.device)
    padded = torch.nn.functional.pad(grad_output, (0, 1))
    return padded.index_select(2, where).view(batch, channels, kernel_size, length)


__all__ = ["INDEX_SCATTER_MAX_COLUMNS", "index_gather", "index_scatter", "positions", "use_index_scatter"]
