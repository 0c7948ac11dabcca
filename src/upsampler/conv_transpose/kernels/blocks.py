"""The overlap-add as strided block adds, one per run of taps, written in place.

The output ``(B, C_out, L)`` is viewed as frames of ``stride`` samples, ``(B, C_out, F,
stride)`` (position ``f * stride + r`` is frame ``f``, phase ``r``); each run of taps of
:mod:`upsampler.conv_transpose.plan` fills phases ``r0, r0 + dilation, ...`` of frames
``t + a``, so each run is one strided block add. A HiFi-GAN layer (``K = 2 * stride``) has
three runs, the middle one covering every output sample: it initialises the output instead of
zeros, and the other two are first added into its columns (contiguous along ``T``), so only it
is placed. The output is written in its final layout: no padding crop, no transpose copy.
"""

from __future__ import annotations

from typing import List, Optional

import torch
from torch import Tensor

from upsampler.conv_transpose.plan import Block, frame_layout, split_frames, tap_blocks


def sums_into_cover(cover: int, remainder: int) -> bool:
    """Whether the other runs are added into the covering run's columns before one placement
    (and gathered back from them): a covering run exists (so dilation is 1, one tap per
    phase) and the output has no partial last frame."""
    return cover == 0 and remainder == 0


def add_runs_into_cover(cols: Tensor, blocks: List[Block]) -> None:
    """Add every other run into the columns of the covering run ``blocks[0]``, in place.

    Tap ``k0 + i`` (phase ``r0 + i``, frame ``t + a``) meets the covering run's tap
    ``kc + r0 + i`` (frame ``t' + a_c``) at ``t' = t + a - a_c``::

        cols[kc + r0 + i, t + a - a_c] += cols[k0 + i, t]      (i < m, t in [t0, t1))

    adds contiguous along ``T``, where adding into the frames transposes each short run.
    Only where :func:`sums_into_cover` holds.
    """
    kc, a_c = blocks[0][0], blocks[0][2]
    for k0, m, a, r0, t0, t1, _, _ in blocks[1:]:
        if t1 > t0:
            shift = a - a_c
            cols[:, :, kc + r0 : kc + r0 + m, t0 + shift : t1 + shift].add_(cols[:, :, k0 : k0 + m, t0:t1])


def copy_runs_from_cover(cols: Tensor, blocks: List[Block]) -> None:
    """The adjoint: each run's columns copied from the gathered covering run (zeros outside)."""
    kc, a_c = blocks[0][0], blocks[0][2]
    for k0, m, a, r0, t0, t1, _, _ in blocks[1:]:
        taps = cols[:, :, k0 : k0 + m]
        taps[..., :t0].zero_()
        taps[..., t1:].zero_()
        if t1 > t0:
            shift = a - a_c
            taps[..., t0:t1].copy_(cols[:, :, kc + r0 : kc + r0 + m, t0 + shift : t1 + shift])


def place(dst: Tensor, src: Tensor, bias: Optional[Tensor], assign: bool, dims: int, bias_out: bool) -> None:
    """``dst += src``, or ``dst = src (+ bias)`` for the block that covers the output
    (with ``bias_out`` the bias sum is written by ``out=``, which autograd cannot record)."""
    if not assign:
        dst.add_(src)
    elif bias is None:
        dst.copy_(src)
    elif bias_out:
        torch.add(src, bias.view([1, -1] + [1] * (dims - 2)), out=dst)
    else:
        dst.copy_(src)
        dst.add_(bias.view([1, -1] + [1] * (dims - 2)))


def block_scatter(
    cols: Tensor, bias: Optional[Tensor], stride: int, padding: int, output_padding: int,
    dilation: int, bias_out: bool,
) -> Tensor:
    """Add each column into ``t * stride + k * dilation - padding``: ``(B, C, K, T) -> (B, C, L)``."""
    batch, channels, kernel_size, length = cols.shape
    extra_frames, remainder = frame_layout(kernel_size, stride, padding, output_padding, dilation)
    out = cols.new_empty((batch, channels, (length + extra_frames) * stride + remainder))
    frames, tail = split_frames(out, length, extra_frames, stride)
    blocks, cover = tap_blocks(kernel_size, length, stride, padding, output_padding, dilation)
    if cover < 0:
        if bias is None:
            out.zero_()
        else:
            out.copy_(bias.view(1, channels, 1).expand_as(out))
    elif sums_into_cover(cover, remainder):
        add_runs_into_cover(cols, blocks)
        blocks = blocks[:1]  # the covering run now holds every sum: one placement
    for i, (k0, m, a, r0, t0, t1, mt, t_tail) in enumerate(blocks):
        phases = r0 + (m - 1) * dilation + 1
        if t1 > t0 and m == 1:
            # one tap: a (B, C, t) add (a size-1 phase axis sends the add down a slow loop)
            src = cols[:, :, k0, t0:t1]
            place(frames[:, :, t0 + a : t1 + a, r0], src, bias, i == cover, 3, bias_out)
        elif t1 > t0:
            # (B, C, m, t) -> (B, C, t, m): taps become phases of frames t + a
            src = cols[:, :, k0 : k0 + m, t0:t1].transpose(2, 3)
            dst = frames[:, :, t0 + a : t1 + a, r0:phases:dilation]
            place(dst, src, bias, i == cover, 4, bias_out)
        if mt > 0:
            tail_phases = r0 + (mt - 1) * dilation + 1
            dst = tail[:, :, r0:tail_phases:dilation]
            place(dst, cols[:, :, k0 : k0 + mt, t_tail], bias, i == cover, 3, bias_out)
    return out


def block_gather(
    grad_output: Tensor, kernel_size: int, length: int, stride: int, padding: int,
    output_padding: int, dilation: int, fold: bool,
) -> Tensor:
    """The scatter's adjoint, an unfold: ``(B, C, L) -> (B, C, K, T)`` columns.

    With ``fold`` the columns are stored as ``(C, K, B, T)`` (a permuted view is returned).
    """
    batch, channels, _ = grad_output.shape
    grad_output = grad_output.contiguous()
    extra_frames, remainder = frame_layout(kernel_size, stride, padding, output_padding, dilation)
    frames, tail = split_frames(grad_output, length, extra_frames, stride)
    if fold:
        store = grad_output.new_empty((channels, kernel_size, batch, length))
        cols = store.permute(2, 0, 1, 3)  # (C, K, B, T) -> (B, C, K, T)
    else:
        cols = grad_output.new_empty((batch, channels, kernel_size, length))
    blocks, cover = tap_blocks(kernel_size, length, stride, padding, output_padding, dilation)
    from_cover = sums_into_cover(cover, remainder)
    for k0, m, a, r0, t0, t1, mt, t_tail in (blocks[:1] if from_cover else blocks):
        taps = cols[:, :, k0 : k0 + m]
        taps[..., :t0].zero_()
        taps[..., t1:].zero_()
        if t1 > t0 and m == 1:
            cols[:, :, k0, t0:t1].copy_(frames[:, :, t0 + a : t1 + a, r0])
        elif t1 > t0:
            # (B, C, t, m) -> (B, C, m, t): phases of frames t + a back to taps
            phases = r0 + (m - 1) * dilation + 1
            taps[..., t0:t1].copy_(frames[:, :, t0 + a : t1 + a, r0:phases:dilation].transpose(2, 3))
        if mt > 0:
            tail_phases = r0 + (mt - 1) * dilation + 1
            cols[:, :, k0 : k0 + mt, t_tail].copy_(tail[:, :, r0:tail_phases:dilation])
    if from_cover:
        copy_runs_from_cover(cols, blocks)
    return cols


__all__ = [
    "add_runs_into_cover", "block_gather", "block_scatter", "copy_runs_from_cover", "place",
    "sums_into_cover",
]
