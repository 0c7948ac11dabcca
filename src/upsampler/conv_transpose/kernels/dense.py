"""The overlap-add and its adjoint out of place, in dense ops only.

Columns ``(B, C, K, T)``; the output is viewed as frames of ``stride`` samples. Each run of taps sharing a frame offset ``a`` (taps ``k0 .. k0+m-1``,
phases ``r0, r0 + dilation, ...``) becomes one frame-shaped tensor ``(B, C, T, stride)``::

    taps (B, C, m, T) --transpose--> (B, C, T, m) --spread by dilation, pad phases--> (B, C, T, s)
                      --shift by a frames (pad / slice)--> (B, C, F + 1, s)

and the output is the sum of those, flattened and cut to ``L_out``. The adjoint slices the
same frames back out and concatenates the runs along ``K``. Only slices (constant steps),
pads, reshapes, transposes, adds and a concatenation appear: no in-place write, no index
tensor. That keeps the ops composable with ``torch.func`` transforms (which cannot write a
batched value into a plain buffer) and makes an ONNX export of pads and adds instead of
index scatters. Memory is linear in ``T``: each run's tensor is the size of the output.
The runs are planned afresh per call (``torch.compile`` traces the plan, not a cache).
"""

from __future__ import annotations

from typing import List

import torch
import torch.nn.functional as F
from torch import Tensor

from upsampler.conv_transpose.plan import compute_tap_runs, frame_layout


def _shift_frames(frames: Tensor, shift: int, total: int) -> Tensor:
    """Move ``(B, C, T, s)`` frames ``shift`` frames later, into ``total`` frames.

    ``total - T`` is a constant (the slices and pads do not depend on ``T``); frames moved
    outside ``[0, total)`` are cut, frames left empty are zeros.
    """
    length = frames.shape[2]
    extra = total - length  # constant in T
    left, right = max(shift, 0), max(extra - shift, 0)
    padded = F.pad(frames, (0, 0, left, right))  # frame f of the result is padded[f + start]
    start = left - shift
    end = start + extra - left - right  # <= 0: counted from the back, no shape arithmetic
    # pad first, then slice: a run whose frames all fall outside (a short input, a large
    # padding) still gives ``total`` zero frames
    return padded[:, :, start:end] if end < 0 else padded[:, :, start:]


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
    for k0, m, a, r0 in compute_tap_runs(kernel_size, stride, padding, dilation):
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
    for k0, m, a, r0 in compute_tap_runs(kernel_size, stride, padding, dilation):
        # frames t + a for t in [0, T): the inverse shift
        window = _shift_frames(frames, -a, length)
        phases = window[..., r0 : r0 + (m - 1) * dilation + 1 : dilation]  # (B, C, T, m)
        runs.append(phases.transpose(2, 3))
    return torch.cat(runs, dim=2) if len(runs) > 1 else runs[0].contiguous()


__all__ = ["dense_gather", "dense_scatter", "whole_frame_scatter"]
