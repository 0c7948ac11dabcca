"""The transposed convolution for kernels much longer than the stride: input windows per phase.

The column formulation of :mod:`upsampler.conv_transpose.kernels.blocks` holds ``B * C_out * K * T`` values and
adds ``K / stride`` runs of taps one strided block at a time; for a 4096-tap kernel at stride
1 that is a gigabyte and 4096 small adds. Here each output phase ``r`` (positions
``f * stride + r``) is read off instead: the taps ``k`` with ``k * dilation - padding = r``
(mod ``stride``) reach it from input step ``f - j_k``, ``j_k = (k * dilation - padding - r)
/ stride``, so ::

    out[:, :, f * stride + r] = sum over (c_in, k in phase r) of w[c_in, :, k] * x[:, c_in, f - j_k]

one matrix product of the weights ``(C_out, C_in * n_r)`` with a window matrix
``(C_in * n_r, F_r)`` gathered from the zero-padded input (an ``as_strided`` view, copied
in chunks of taps so the buffer stays near ``buffer_elements``). The product
contracts over ``C_in * K`` instead of ``C_in``, which is what makes it fast. The backward
is the matching unfold of the output gradient, in the same chunks of taps.
"""

from __future__ import annotations

import math
from typing import List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from upsampler.conv_transpose.plan import output_length

def _phase_taps(kernel_size: int, stride: int, padding: int, dilation: int, phase: int) -> List[int]:
    """Taps reaching output phase ``phase``, in decreasing ``k`` (increasing input step)."""
    return [k for k in range(kernel_size - 1, -1, -1) if (k * dilation - padding - phase) % stride == 0]


def _chunk(taps: int, rows: int, buffer_elements: int) -> int:
    """Taps per chunk so that ``rows * chunk`` stays near the buffer budget."""
    return max(1, min(taps, buffer_elements // max(rows, 1)))


def windows_forward(
    x: Tensor, weight: Tensor, bias: Optional[Tensor], stride: int, padding: int,
    output_padding: int, groups: int, dilation: int, buffer_elements: int,
) -> Tensor:
    """``(B, C_in, T) -> (B, C_out, L_out)`` by per-phase window products (unchecked)."""
    batch, in_channels, length = x.shape
    _, group_out, kernel_size = weight.shape
    group_in, out_channels = in_channels // groups, group_out * groups
    out_length = output_length(length, kernel_size, stride, padding, output_padding, dilation)
    out = x.new_zeros((batch, out_channels, out_length))
    step = dilation // math.gcd(dilation, stride)  # input steps between consecutive phase taps
    for phase in range(min(stride, out_length)):
        taps = _phase_taps(kernel_size, stride, padding, dilation, phase)
        frames = (out_length - phase + stride - 1) // stride
        if not taps:
            continue
        first = (taps[0] * dilation - padding - phase) // stride  # largest j: earliest step
        left = max(0, first)
        right = max(0, frames - first + (len(taps) - 1) * step - length)
        padded = F.pad(x, (left, right)).reshape(batch, groups, group_in, -1)
        dst = out[:, :, phase::stride].view(batch, groups, group_out, frames)
        chunk = _chunk(len(taps), batch * group_in * frames, buffer_elements)
        for i0 in range(0, len(taps), chunk):
            chunk_taps = taps[i0 : i0 + chunk]
            n = len(chunk_taps)
            start = left - first + i0 * step  # padded index of tap i0's first window sample
            s = padded.stride()
            windows = padded.as_strided(
                (batch, groups, group_in, n, frames), (s[0], s[1], s[2], step * s[3], s[3]),
                padded.storage_offset() + start * s[3],
            ).reshape(batch, groups, group_in * n, frames)
            # (C_in, C_out / G, n) -> (G, C_out / G, C_in / G * n)
            w = weight[:, :, chunk_taps].reshape(groups, group_in, group_out, n)
            w = w.permute(0, 2, 1, 3).reshape(groups, group_out, group_in * n)
            dst += torch.matmul(w, windows)
            del windows  # freed before the next chunk's copy: one buffer at a time
    return out if bias is None else out.add_(bias.view(1, -1, 1))


def windows_backward(
    grad_output: Tensor, x: Tensor, weight: Tensor, stride: int, padding: int,
    output_padding: int, groups: int, dilation: int, need_input: bool, need_weight: bool,
    buffer_elements: int,
) -> Tuple[Optional[Tensor], Optional[Tensor]]:
    """Gradients of input and weight: the output gradient unfolded in chunks of taps."""
    batch, in_channels, length = x.shape
    _, group_out, kernel_size = weight.shape
    group_in = in_channels // groups
    out_length = grad_output.shape[2]
    # tap k of step t reads grad position t * stride + k * dilation - padding
    left = padding
    right = max(0, (length - 1) * stride + (kernel_size - 1) * dilation - padding - out_length + 1)
    padded = F.pad(grad_output, (left, right)).reshape(batch, groups, group_out, -1)
    s = padded.stride()
    grad_input = x.new_zeros((batch, groups, group_in, length)) if need_input else None
    grad_weight = weight.new_empty((groups, group_in, group_out, kernel_size)) if need_weight else None
    xg = x.reshape(batch, groups, group_in, length).permute(1, 2, 0, 3).reshape(groups, group_in, -1)
    chunk = _chunk(kernel_size, batch * group_out * length, buffer_elements)
    for k0 in range(0, kernel_size, chunk):
        n = min(chunk, kernel_size - k0)
        # (B, G, C_out / G, n, T): grad[b, g, c, t * stride + (k0 + i) * dilation - padding]
        cols = padded.as_strided(
            (batch, groups, group_out, n, length), (s[0], s[1], s[2], dilation * s[3], stride * s[3]),
            padded.storage_offset() + k0 * dilation * s[3],
        ).reshape(batch, groups, group_out * n, length)
        w = weight[:, :, k0 : k0 + n].reshape(groups, group_in, group_out * n)
        if grad_input is not None:
            grad_input += torch.matmul(w, cols)
        if grad_weight is not None:
            if batch == 1:  # (G, C_out / G * n, T) transposed in the product, not copied
                part = torch.matmul(xg, cols[0].transpose(1, 2))
            else:
                flat = cols.transpose(0, 1).transpose(2, 3).reshape(groups, batch * length, group_out * n)
                part = torch.bmm(xg, flat)
            grad_weight[..., k0 : k0 + n] = part.view(groups, group_in, group_out, n)
        del cols  # freed before the next chunk's copy
    if grad_input is not None:
        grad_input = grad_input.view(batch, in_channels, length)
    if grad_weight is not None:
        grad_weight = grad_weight.view(in_channels, group_out, kernel_size)
    return grad_input, grad_weight


__all__ = ["windows_backward", "windows_forward"]
