"""The overlap-add as one indexed add, for short inputs where per-op overhead dominates.

Column ``(k, t)`` lands at output position ``t * stride + k * dilation - padding``; positions
outside ``[0, L_out)`` go to one spare slot past the end, which is cut off. The scatter is
then a single ``index_add_`` over ``K * T`` columns and its adjoint a single
``index_select``, whatever the number of tap runs: a handful of ops per call instead of a
few per run. The position tensor depends only on the shape, so it is built once per shape
and device. Eager only (graph capture keeps the strided-block scatter of
:mod:`upsampler.conv_transpose.kernels.blocks`).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Optional

import torch
from torch import Tensor

from upsampler.conv_transpose.plan import PLAN_CACHE_SIZE, output_length

# Calls with at most this many column values (B * C_out * K * T) take the indexed add: the
# measured crossover with the strided-block scatter on 2 CPU threads (recipes/benchmark.py,
# section "crossover": 0.8-0.9x at 4-16 k values, 1.0-1.1x at 32 k, 2x at 64 k); beyond it
# the indexed add's per-element cost loses to the strided adds.
INDEX_SCATTER_MAX_COLUMNS = 16384
# Among those, calls whose scatter as a 0/1 matrix product costs at most this many
# multiply-adds (B * C_out * K * T * L_out) take the product: one ``addmm`` (bias included)
# instead of a zero fill, an ``index_add_``, a slice and a bias add. Set from
# recipes/benchmark.py on 2 CPU threads: section "overhead" (T <= 10, batch 1) went from
# 1.8-2.3x torch's forward time to 1.4-1.7x; section "crossover" (pair "matrix/index"):
# 0.7-0.8x the indexed add's time at 8 k-100 k products, 1.6-1.9x at 1 M, 1.7-2.7x at 4 M.
# The product's cost grows with T**2: only tiny calls take it.
# The product multiplies every column by the zeros of the positions it does not reach, so one
# NaN or Inf column makes the whole item NaN where torch's op (and the indexed add) leave the
# other positions finite: a result with a non-finite value is recomputed by the indexed add
# (see :func:`all_finite`). That check reads a value back, so only CPU tensors take the product.
# Its cost (recipes/benchmark.py, section "overhead", 2 threads, shared machine, geometric mean
# of the forward rows' ratio_of_minima ours/torch): 1.57 without it, 1.91-1.94 with it; sending
# these calls to the indexed add instead (no product at all) gave 2.13-2.16, so the product stays.
MATRIX_SCATTER_MAX_PRODUCTS = 2**18


def use_index_scatter(batch: int, channels: int, kernel_size: int, length: int) -> bool:
    """Whether ``B * C_out * K * T`` column values are few enough for the indexed add."""
    return batch * channels * kernel_size * length <= INDEX_SCATTER_MAX_COLUMNS


def use_matrix_scatter(columns_total: int, out_length: int) -> bool:
    """Whether the 0/1 scatter matrix product of ``columns_total`` values is cheap enough."""
    return columns_total * out_length <= MATRIX_SCATTER_MAX_PRODUCTS


def all_finite(t: Tensor) -> bool:
    """Whether every value of ``t`` is finite, from one sum (an overflowing sum also says no).

    A 0/1 matrix product turns one non-finite column into NaN everywhere it multiplies, so a
    matrix result that passes holds exactly the values of the indexed add; one that fails is
    recomputed (also when the sum merely overflowed: slower, still exact).
    """
    total = t.sum().item()
    return total - total == 0  # False for NaN and +-Inf


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
    out_length = output_length(length, kernel_size, stride, padding, output_padding, dilation)
    taps = torch.arange(kernel_size).view(-1, 1) * dilation - padding
    where = (taps + torch.arange(length).view(1, -1) * stride).flatten()
    where[(where < 0) | (where >= out_length)] = out_length
    return where.to(device)


@lru_cache(maxsize=PLAN_CACHE_SIZE)
def scatter_matrix(
    kernel_size: int,
    length: int,
    stride: int,
    padding: int,
    output_padding: int,
    dilation: int,
    dtype: torch.dtype,
    device: torch.device,
) -> Tensor:
    """``(K * T, L_out)``: row ``(k, t)`` holds a one at the column's output position (if any)."""
    out_length = output_length(length, kernel_size, stride, padding, output_padding, dilation)
    where = positions(kernel_size, length, stride, padding, output_padding, dilation, torch.device("cpu"))
    matrix = torch.zeros((kernel_size * length, out_length + 1), dtype=dtype)
    matrix[torch.arange(kernel_size * length), where] = 1
    return matrix[:, :out_length].contiguous().to(device)


def matrix_scatter(
    cols: Tensor, bias: Optional[Tensor], stride: int, padding: int, output_padding: int,
    dilation: int,
) -> Tensor:
    """``(B, C, K, T)`` contiguous columns -> ``(B, C, L_out)`` (+ bias), one matrix product."""
    batch, channels, kernel_size, length = cols.shape
    matrix = scatter_matrix(
        kernel_size, length, stride, padding, output_padding, dilation, cols.dtype, cols.device
    )
    out_length = matrix.shape[1]
    flat = cols.view(batch * channels, kernel_size * length)
    if bias is None:
        out = torch.mm(flat, matrix)
    elif batch == 1:
        out = torch.addmm(bias.view(channels, 1), flat, matrix)
    else:
        out = torch.mm(flat, matrix).view(batch, channels, out_length).add_(bias.view(1, channels, 1))
    return out.view(batch, channels, out_length)


def matrix_forward(
    x: Tensor, weight: Tensor, bias: Optional[Tensor], stride: int, padding: int,
    output_padding: int, dilation: int,
) -> Optional[Tensor]:
    """The whole op on a tiny ``(1, C_in, T)`` input with ``groups=1`` in two matrix products.

    ``(C_out * K, C_in) @ (C_in, T)`` gives the columns, whose storage is already
    ``(1, C_out, K, T)``; :func:`matrix_scatter` scatters them and adds the bias, or, when
    that result is not all finite, :func:`index_scatter` does (NaN and Inf then reach only the
    positions torch's op gives them). ``None`` when the call is not tiny or not on the CPU
    (the caller then takes the general path).
    """
    in_channels, out_channels, kernel_size = weight.shape
    length = x.shape[2]
    columns_total = out_channels * kernel_size * length
    if columns_total > INDEX_SCATTER_MAX_COLUMNS or x.device.type != "cpu":
        return None
    out_length = output_length(length, kernel_size, stride, padding, output_padding, dilation)
    if not use_matrix_scatter(columns_total, out_length):
        return None
    cols = torch.mm(weight.reshape(in_channels, -1).t(), x[0])
    cols = cols.view(1, out_channels, kernel_size, length)
    out = matrix_scatter(cols, bias, stride, padding, output_padding, dilation)
    if all_finite(out):
        return out
    out = index_scatter(cols, stride, padding, output_padding, dilation)
    return out if bias is None else out.add_(bias.view(1, out_channels, 1))


def matrix_gather(
    grad_output: Tensor, kernel_size: int, length: int, stride: int, padding: int,
    output_padding: int, dilation: int,
) -> Tensor:
    """The adjoint: ``(B, C, L_out) -> (B, C, K, T)``, one product with the transposed matrix."""
    batch, channels, out_length = grad_output.shape
    matrix = scatter_matrix(
        kernel_size, length, stride, padding, output_padding, dilation, grad_output.dtype,
        grad_output.device,
    )
    flat = torch.mm(grad_output.reshape(batch * channels, out_length), matrix.t())
    return flat.view(batch, channels, kernel_size, length)


def index_scatter(
    cols: Tensor, stride: int, padding: int, output_padding: int, dilation: int
) -> Tensor:
    """``(B, C, K, T)`` contiguous columns -> ``(B, C, L_out)``, one ``index_add_``."""
    batch, channels, kernel_size, length = cols.shape
    where = positions(kernel_size, length, stride, padding, output_padding, dilation, cols.device)
    out_length = output_length(length, kernel_size, stride, padding, output_padding, dilation)
    out = cols.new_zeros((batch, channels, out_length + 1))  # + the spare slot
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


__all__ = [
    "INDEX_SCATTER_MAX_COLUMNS", "MATRIX_SCATTER_MAX_PRODUCTS", "all_finite", "index_gather", "index_scatter",
    "matrix_forward", "matrix_gather", "matrix_scatter", "positions", "scatter_matrix", "use_index_scatter",
    "use_matrix_scatter",
]
