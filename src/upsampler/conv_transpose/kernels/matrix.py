"""The overlap-add of tiny calls as one product with a cached 0/1 scatter matrix.

Row ``(k, t)`` of the ``(K * T, L_out)`` matrix holds a one at column ``(k, t)``'s output
position ``t * stride + k * dilation - padding`` (none when it falls outside the output), so
the scatter is one ``mm`` (bias folded in by ``addmm``) and its adjoint one product with the
transpose: a couple of ops per call where per-op overhead dominates. The product multiplies
every column by the zeros of the positions it does not reach, so one NaN or Inf column makes
the whole item NaN where torch's op leaves the other positions finite: a result for which
:func:`all_finite` fails is redone by the indexed add. Its cost grows with ``T**2``.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Optional

import torch
from torch import Tensor

from upsampler.conv_transpose.plan import PLAN_CACHE_SIZE, output_length, positions


def all_finite(t: Tensor) -> bool:
    """Whether every value of ``t`` is finite, from one sum (an overflowing sum also says no).

    A matrix result that passes holds exactly the values of the indexed add; one that fails
    is recomputed (also when the sum merely overflowed: slower, still exact).
    """
    total = t.sum().item()
    return total - total == 0  # False for NaN and +-Inf


@lru_cache(maxsize=PLAN_CACHE_SIZE)
def scatter_matrix(
    kernel_size: int, length: int, stride: int, padding: int, output_padding: int,
    dilation: int, dtype: torch.dtype, device: torch.device,
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


__all__ = ["all_finite", "matrix_gather", "matrix_scatter", "scatter_matrix"]
