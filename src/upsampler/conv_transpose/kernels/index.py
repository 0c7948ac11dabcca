"""The overlap-add as one indexed add, for short inputs where per-op overhead dominates.

Column ``(k, t)`` lands at output position ``t * stride + k * dilation - padding``; positions
outside ``[0, L_out)`` go to one spare slot past the end, which is cut off. The scatter is
then a single ``index_add_`` over ``K * T`` columns and its adjoint a single
``index_select``, whatever the number of tap runs: a handful of ops per call instead of a
few per run. The position tensor is cached per shape and device
(:func:`upsampler.conv_transpose.plan.positions`).
"""

from __future__ import annotations

import torch
from torch import Tensor

from upsampler.conv_transpose.plan import output_length, positions


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
    grad_output: Tensor, kernel_size: int, length: int, stride: int, padding: int,
    output_padding: int, dilation: int,
) -> Tensor:
    """The adjoint: ``(B, C, L_out) -> (B, C, K, T)``, one ``index_select`` (spare slot zero)."""
    batch, channels, _ = grad_output.shape
    where = positions(kernel_size, length, stride, padding, output_padding, dilation, grad_output.device)
    padded = torch.nn.functional.pad(grad_output, (0, 1))
    return padded.index_select(2, where).view(batch, channels, kernel_size, length)


__all__ = ["index_gather", "index_scatter"]
