"""The overlap-add of :mod:`upsampler.conv_transpose.kernels.blocks` and its adjoint, out of place, in dense ops only.

Same layout as :mod:`upsampler.conv_transpose.kernels.blocks`: columns ``(B, C, K, T)``, output viewed as frames
of ``stride`` samples. Each run of taps sharing a frame offset ``a`` (taps ``k0 .. k0+m-1``,
phases ``r0, r0 + dilation, ...``) becomes one frame-shaped tensor ``(B, C, T, stride)``::

    taps (B, C, m, T) --transpose--> (B, C, T, m) --spread by dilation, pad phases--> (B, C, T, s)
                      --shift by a frames (pad / slice)--> (B, C, F + 1, s)

and the output is the sum of those, flattened and cut to ``L_out``. The adjoint slices the
same frames back out and concatenates the runs along ``K``. Only slices (constant steps),
pads, reshapes, transposes, adds and a concatenation appear: no in-place write, no index
tensor. That keeps the ops composable with ``torch.func`` transforms (which cannot write a
batched value into a plain buffer) and makes an ONNX export of pads and adds instead of
index scatters. Memory is linear in ``T``: each run's tensor is the size of the output.
"""

from __future__ import annotations

from typing import List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from upsampler.conv_transpose.kernels.blocks import columns
from upsampler.conv_transpose.capture import is_compiling
from upsampler.conv_transpose.plan import Run, compute_tap_runs, frame_layout, tap_runs


@torch.jit.unused
def functorch_active() -> bool:
    """Whether a ``torch.func`` transform (vmap, grad, jvp, ...) wraps the current call."""
    return bool(torch._C._are_functorch_transforms_active())


def _runs(kernel_size: int, stride: int, padding: int, dilation: int) -> List[Run]:
    """The tap runs, from the cache in eager calls (the compiler traces the plain function)."""
    if is_compiling():
        return compute_tap_runs(kernel_size, stride, padding, dilation)
    return tap_runs(kernel_size, stride, padding, dilation)


def _shift_frames(frames: Tensor, shift: int, total: int) -> Tensor:
    """Move ``(B, C, T, s)`` frames ``shift`` frames later, into ``total`` frames.

    ``total - T`` is a constant (the slices and pads do not depend on ``T``); frames moved
    outside ``[0, total)`` are cut, frames left empty are zeros.
    """
    length = frames.shape[2]
    extra = total - length  # constant in T
    if shift < 0:
        frames = frames[:, :, -shift:]
    right = extra - shift
    if right < 0:
        frames = frames[:, :, :right]  # a negative end: no shape arithmetic
    return F.pad(frames, (0, 0, max(shift, 0), max(right, 0)))


def _spread_phases(taps: Tensor, r0: int, dilation: int, stride: int) -> Tensor:
    """``(B, C, T, m)`` taps to ``(B, C, T, stride)`` phases ``r0, r0 + dilation, ...``."""
    m = taps.shape[-1]
    if dilation > 1:
        spread = F.pad(taps.unsqueeze(-1), (0, dilation - 1))  # (B, C, T, m, d)
        taps = spread.flatten(-2)[..., : (m - 1) * dilation + 1]
    return F.pad(taps, (r0, stride - r0 - ((m - 1) * dilation + 1)))


def whole_frame_scatter(cols: Tensor, stride: int, padding: int, output_padding: int) -> Tensor:
    """:func:`dense_scatter` for ``dilation == 1`` and ``K`` a multiple of ``stride``.

    Tap ``k = j * stride + r`` of step ``t`` lands at ``(t + j) * stride + r - padding``:
    the taps split into ``n = K / stride`` whole frames, one transpose gives them all as
    ``(B, C, n, T, stride)``, frame block ``j`` is padded ``j`` frames in front and the sum
    of the ``n`` blocks, flattened, is the unpadded output; ``padding`` is then cut from both
    ends (and ``output_padding`` added at the end). A HiFi-GAN layer (``K = 2 * stride``)
    becomes one transpose, two pads, one add and one slice, where the runs of
    :func:`dense_scatter` need three transposes and five pads: fewer copies of the output.
    """
    batch, channels, kernel_size, length = cols.shape
    blocks = kernel_size // stride
    frames = cols.reshape(batch, channels, blocks, stride, length).transpose(3, 4)
    out = None
    for j in range(blocks):
        # a slice, not ``frames[:, :, j]``: an integer index exports as a Gather
        shifted = F.pad(frames[:, :, j : j + 1], (0, 0, j, blocks - 1 - j))  # T + n - 1 frames
        out = shifted if out is None else out + shifted
    assert out is not None  # kernel_size >= stride >= 1 gives at least one block
    flat = out.reshape(batch, channels, (length + blocks - 1) * stride)
    end = output_padding - padding  # the unpadded output ends ``padding`` samples late
    if end < 0:
        return flat[:, :, padding:end]  # a negative end: no shape arithmetic
    return F.pad(flat[:, :, padding:], (0, end))


def dense_scatter(
    cols: Tensor, stride: int, padding: int, output_padding: int, dilation: int
) -> Tensor:
    """Add each column into ``t * stride + k * dilation - padding``: ``(B, C, K, T) -> (B, C, L)``."""
    batch, channels, kernel_size, length = cols.shape
    if dilation == 1 and kernel_size % stride == 0:
        return whole_frame_scatter(cols, stride, padding, output_padding)
    extra_frames, remainder = frame_layout(kernel_size, stride, padding, output_padding, dilation)
    total = length + extra_frames + 1  # whole frames and the partial last one
    out = None
    for k0, m, a, r0 in _runs(kernel_size, stride, padding, dilation):
        taps = cols[:, :, k0 : k0 + m].transpose(2, 3)
        frames = _shift_frames(_spread_phases(taps, r0, dilation, stride), a, total)
        out = frames if out is None else out + frames
    assert out is not None  # kernel_size >= 1 gives at least one run
    flat = out.reshape(batch, channels, total * stride)
    return flat[:, :, : remainder - stride]  # remainder < stride: a negative end


def dense_gather(
    grad_output: Tensor,
    kernel_size: int,
    length: int,
    stride: int,
    padding: int,
    output_padding: int,
    dilation: int,
) -> Tensor:
    """The adjoint of :func:`dense_scatter`, an unfold: ``(B, C, L) -> (B, C, K, T)``."""
    batch, channels, _ = grad_output.shape
    extra_frames, remainder = frame_layout(kernel_size, stride, padding, output_padding, dilation)
    total = length + extra_frames + 1
    frames = F.pad(grad_output, (0, stride - remainder)).reshape(batch, channels, total, stride)
    runs: List[Tensor] = []
    for k0, m, a, r0 in _runs(kernel_size, stride, padding, dilation):
        # frames t + a for t in [0, T): the inverse shift
        window = _shift_frames(frames, -a, length)
        phases = window[..., r0 : r0 + (m - 1) * dilation + 1 : dilation]  # (B, C, T, m)
        runs.append(phases.transpose(2, 3))
    return torch.cat(runs, dim=2) if len(runs) > 1 else runs[0].contiguous()


@torch.jit.unused
def dense_conv_transpose1d(
    x: Tensor,
    weight: Tensor,
    bias: Optional[Tensor],
    stride: int,
    padding: int,
    output_padding: int,
    groups: int,
    dilation: int,
) -> Tensor:
    """Columns then the dense overlap-add: ``(B, C_in, T) -> (B, C_out, L_out)``, unchecked."""
    cols = columns(x, weight, groups, fold=False)
    out = dense_scatter(cols, stride, padding, output_padding, dilation)
    return out if bias is None else out + bias.view(1, -1, 1)


@torch.jit.unused
def dense_column_backward(
    grad_output: Tensor,
    x: Tensor,
    weight: Tensor,
    stride: int,
    padding: int,
    output_padding: int,
    groups: int,
    dilation: int,
    need_input: bool,
    need_weight: bool,
) -> Tuple[Optional[Tensor], Optional[Tensor]]:
    """Gradients of input and weight through :func:`dense_gather` and batched matmuls."""
    batch, in_channels, length = x.shape
    _, group_out, kernel_size = weight.shape
    group_in = in_channels // groups
    per_group = group_out * kernel_size
    cols = dense_gather(grad_output, kernel_size, length, stride, padding, output_padding, dilation)
    flat = cols.reshape(batch, groups, per_group, length)  # (B, G, C_out / G * K, T)
    grad_input: Optional[Tensor] = None
    grad_weight: Optional[Tensor] = None
    if need_input:
        taps = weight.reshape(groups, group_in, per_group)
        grad_input = torch.matmul(taps, flat).reshape(batch, in_channels, length)
    if need_weight:
        xg = x.reshape(batch, groups, group_in, length)
        per_sample = torch.matmul(xg, flat.transpose(2, 3))  # (B, G, C_in / G, C_out / G * K)
        grad_weight = per_sample.sum(0).reshape(in_channels, group_out, kernel_size)
    return grad_input, grad_weight


__all__ = [
    "dense_column_backward", "dense_conv_transpose1d", "dense_gather", "dense_scatter",
    "functorch_active", "whole_frame_scatter",
]
