"""The kernels behind :func:`upsampler.conv_transpose.functional.conv_transpose1d`: columns, scatter, gather.

Layout: the columns are channels-first, ``(B, C_out, K, T)``, and the output
``(B, C_out, L)`` is viewed as frames of ``stride`` samples, ``(B, C_out, F, stride)``
(position ``f * stride + r`` is frame ``f``, phase ``r``). Tap ``k`` lands in frame
``t + a_k`` at phase ``r_k`` with ``a_k, r_k = divmod(k * dilation - padding, stride)``;
consecutive taps sharing ``a_k`` form a run that fills phases ``r, r + dilation, ...``
of the same frames, so each run is one strided block add (a HiFi-GAN layer,
``K = 2 * stride``, has three runs, the middle one covering every output sample,
which initialises the output instead of zeros; the other two are first added into its
columns, contiguous along ``T``, so only it is placed). The output is written in place
in its final layout: no padding crop and no transpose copy at the end.

Every function here assumes checked arguments and a batched ``(B, C, T)`` input.
"""

from __future__ import annotations

from typing import List, Optional, Tuple

import torch
from torch import Tensor

from upsampler.conv_transpose.capture import is_capturing
from upsampler.conv_transpose.kernels.index import (
    all_finite,
    index_gather,
    index_scatter,
    matrix_gather,
    matrix_scatter,
    use_index_scatter,
    use_matrix_scatter,
)
from upsampler.conv_transpose.plan import Block, compute_tap_blocks, frame_layout, tap_blocks

# Fold the batch into the matrix product's columns ((C_in, B * T) instead of B products
# of (C_in, T)) when a sample has fewer time steps than FOLD_RATIO times its columns per
# step: a short input then repacks the large weight matrix once instead of B times.
FOLD_RATIO = 4


@torch.jit.unused
def cached_blocks(
    kernel_size: int, length: int, stride: int, padding: int, output_padding: int, dilation: int
) -> Tuple[List[Block], int]:
    """``plan.tap_blocks`` for eager calls (capture may see symbolic sizes the cache cannot key)."""
    return tap_blocks(kernel_size, length, stride, padding, output_padding, dilation)


def fold_batch(batch: int, length: int, columns_per_step: int, ratio: int = FOLD_RATIO) -> bool:
    """Whether one ``(C_in, B * T)`` product beats ``B`` products of ``(C_in, T)``."""
    return batch > 1 and length * ratio < columns_per_step


def columns(x: Tensor, weight: Tensor, groups: int, fold: bool) -> Tensor:
    """One matrix product: ``(B, C_in, T) -> (B, C_out, K, T)`` columns (maybe a permuted view)."""
    batch, in_channels, length = x.shape
    _, group_out, kernel_size = weight.shape
    group_in = in_channels // groups
    out_channels = groups * group_out
    if group_in == 1 and group_out == 1:
        # depthwise: (B, C, 1, T) * (1, C, K, 1) -> (B, C, K, T), an elementwise product
        return x.unsqueeze(2) * weight.reshape(1, out_channels, kernel_size, 1)
    # (C_in, C_out / G, K) -> (G, C_in / G, C_out / G * K) -> (G, C_out / G * K, C_in / G)
    taps = weight.reshape(groups, group_in, group_out * kernel_size).transpose(1, 2)
    # one plain mm: a batched matmul costs ~3x the call overhead (not under capture: a trace
    # would fix the batch at 1)
    if groups == 1 and batch == 1 and not is_capturing():
        return torch.mm(taps[0], x[0]).view(1, out_channels, kernel_size, length)
    if fold:
        # (B, C_in, T) -> (C_in, B, T) -> (G, C_in / G, B * T)
        flat = x.transpose(0, 1).reshape(groups, group_in, batch * length)
        cols = torch.matmul(taps, flat)
        # (G, C_out / G * K, B * T) -> (C_out, K, B, T) -> (B, C_out, K, T)
        return cols.view(out_channels, kernel_size, batch, length).permute(2, 0, 1, 3)
    # (B, C_in, T) -> (B, G, C_in / G, T) -> (B, G, C_out / G * K, T) -> (B, C_out, K, T)
    cols = torch.matmul(taps, x.reshape(batch, groups, group_in, length))
    return cols.view(batch, out_channels, kernel_size, length)


def split_frames(signal: Tensor, length: int, extra_frames: int, stride: int) -> Tuple[Tensor, Tensor]:
    """``(B, C, L) -> (B, C, F, stride)`` full frames and the ``(B, C, L - F * stride)`` tail."""
    batch, channels, _ = signal.shape
    frames = length + extra_frames
    full = signal[:, :, : frames * stride].view(batch, channels, frames, stride)
    return full, signal[:, :, frames * stride :]


def scatter(
    cols: Tensor,
    bias: Optional[Tensor],
    stride: int,
    padding: int,
    output_padding: int,
    dilation: int,
) -> Tensor:
    """Add each column into ``t * stride + k * dilation - padding``: ``(B, C, K, T) -> (B, C, L)``."""
    batch, channels, kernel_size, length = cols.shape
    extra_frames, remainder = frame_layout(kernel_size, stride, padding, output_padding, dilation)
    out_length = (length + extra_frames) * stride + remainder
    if not torch.jit.is_scripting():
        if not is_capturing() and use_index_scatter(batch, channels, kernel_size, length) and cols.is_contiguous():
            # the 0/1 product spreads NaN and Inf over the item: a non-finite result is redone
            total = batch * channels * kernel_size * length
            if cols.device.type == "cpu" and use_matrix_scatter(total, out_length):
                out = matrix_scatter(cols, bias, stride, padding, output_padding, dilation)
                if all_finite(out):
                    return out
            out = index_scatter(cols, stride, padding, output_padding, dilation)
            return out if bias is None else out.add_(bias.view(1, channels, 1))
    out = cols.new_empty((batch, channels, out_length))
    frames, tail = split_frames(out, length, extra_frames, stride)
    if torch.jit.is_scripting() or is_capturing():
        blocks, cover = compute_tap_blocks(kernel_size, length, stride, padding, output_padding, dilation)
    else:
        blocks, cover = cached_blocks(kernel_size, length, stride, padding, output_padding, dilation)
    if cover < 0:
        if bias is None:
            out.zero_()
        else:
            out.copy_(bias.view(1, channels, 1).expand_as(out))
    elif not torch.jit.is_scripting() and sums_into_cover(cover, remainder):
        add_runs_into_cover(cols, blocks)
        blocks = blocks[:1]  # the covering run now holds every sum: one placement
    for i, (k0, m, a, r0, t0, t1, mt, t_tail) in enumerate(blocks):
        phases = r0 + (m - 1) * dilation + 1
        if t1 > t0 and m == 1:
            # one tap: a (B, C, t) add (a size-1 phase axis sends the add down a slow loop)
            place(frames[:, :, t0 + a : t1 + a, r0], cols[:, :, k0, t0:t1], bias, i == cover, 3)
        elif t1 > t0:
            # (B, C, m, t) -> (B, C, t, m): taps become phases of frames t + a
            src = cols[:, :, k0 : k0 + m, t0:t1].transpose(2, 3)
            dst = frames[:, :, t0 + a : t1 + a, r0:phases:dilation]
            place(dst, src, bias, i == cover, 4)
        if mt > 0:
            tail_phases = r0 + (mt - 1) * dilation + 1
            dst = tail[:, :, r0:tail_phases:dilation]
            place(dst, cols[:, :, k0 : k0 + mt, t_tail], bias, i == cover, 3)
    return out


def sums_into_cover(cover: int, remainder: int) -> bool:
    """Whether the other runs are added into the covering run's columns before one placement
    (and gathered back from them): a covering run exists (so dilation is 1, one tap per
    phase) and the output has no partial last frame."""
    return cover == 0 and remainder == 0


@torch.jit.unused
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


@torch.jit.unused
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


def place(dst: Tensor, src: Tensor, bias: Optional[Tensor], assign: bool, dims: int) -> None:
    """``dst += src``, or ``dst = src (+ bias)`` for the block that covers the output."""
    if not assign:
        dst.add_(src)
    elif bias is None:
        dst.copy_(src)
    elif torch.is_grad_enabled() or torch.jit.is_tracing():  # out= is not differentiable
        dst.copy_(src)
        dst.add_(bias.view([1, -1] + [1] * (dims - 2)))
    else:
        torch.add(src, bias.view([1, -1] + [1] * (dims - 2)), out=dst)


def gather(
    grad_output: Tensor,
    kernel_size: int,
    length: int,
    stride: int,
    padding: int,
    output_padding: int,
    dilation: int,
    fold: bool,
) -> Tensor:
    """The scatter's adjoint, an unfold: ``(B, C, L) -> (B, C, K, T)`` columns.

    With ``fold`` the columns are stored as ``(C, K, B, T)`` (a permuted view is returned).
    """
    batch, channels, out_length = grad_output.shape
    if not torch.jit.is_scripting():
        if not fold and not is_capturing() and use_index_scatter(batch, channels, kernel_size, length):
            # as in scatter: columns with a non-finite value are gathered again by index
            total = batch * channels * kernel_size * length
            if grad_output.device.type == "cpu" and use_matrix_scatter(total, out_length):
                cols = matrix_gather(
                    grad_output, kernel_size, length, stride, padding, output_padding, dilation
                )
                if all_finite(cols):
                    return cols
            return index_gather(grad_output, kernel_size, length, stride, padding, output_padding, dilation)
    grad_output = grad_output.contiguous()
    extra_frames, remainder = frame_layout(kernel_size, stride, padding, output_padding, dilation)
    frames, tail = split_frames(grad_output, length, extra_frames, stride)
    if fold:
        store = grad_output.new_empty((channels, kernel_size, batch, length))
        cols = store.permute(2, 0, 1, 3)  # (C, K, B, T) -> (B, C, K, T)
    else:
        cols = grad_output.new_empty((batch, channels, kernel_size, length))
    if torch.jit.is_scripting() or is_capturing():
        blocks, cover = compute_tap_blocks(kernel_size, length, stride, padding, output_padding, dilation)
    else:
        blocks, cover = cached_blocks(kernel_size, length, stride, padding, output_padding, dilation)
    from_cover = not torch.jit.is_scripting() and sums_into_cover(cover, remainder)
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


def column_backward(
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
    """Gradients of input ``(B, C_in, T)`` and weight ``(C_in, C_out / G, K)``: gather, matmuls."""
    batch, in_channels, length = x.shape
    _, group_out, kernel_size = weight.shape
    group_in = in_channels // groups
    per_group = group_out * kernel_size
    out_channels = groups * group_out
    fold = fold_batch(batch, length, groups * per_group)
    fold = fold and not use_index_scatter(batch, out_channels, kernel_size, length)
    cols = gather(grad_output, kernel_size, length, stride, padding, output_padding, dilation, fold)
    # (C_in, C_out / G, K) -> (G, C_in / G, C_out / G * K)
    taps = weight.reshape(groups, group_in, per_group)
    grad_input: Optional[Tensor] = None
    grad_weight: Optional[Tensor] = None
    if groups == 1 and batch == 1:  # plain mms (cheaper calls than batched matmuls)
        flat = cols.reshape(per_group, length)
        if need_input:
            grad_input = torch.mm(taps[0], flat).view(1, in_channels, length)
        if need_weight:
            grad_weight = torch.mm(x[0], flat.t()).view(1, in_channels, per_group)
    elif fold:
        # (B, C_out, K, T) -> (C_out, K, B, T) (its storage order) -> (G, C_out / G * K, B * T)
        flat = cols.permute(1, 2, 0, 3).reshape(groups, per_group, batch * length)
        if need_input:
            # (G, C_in / G, B * T) -> (C_in, B, T) -> (B, C_in, T)
            grad_input = torch.matmul(taps, flat).view(in_channels, batch, length).transpose(0, 1)
        if need_weight:
            # (B, C_in, T) -> (C_in, B, T) -> (G, C_in / G, B * T)
            flat_x = x.transpose(0, 1).reshape(groups, group_in, batch * length)
            grad_weight = torch.matmul(flat_x, flat.transpose(1, 2))
    else:
        # (B, C_out, K, T) -> (B, G, C_out / G * K, T)
        flat = cols.reshape(batch, groups, per_group, length)
        if need_input:
            # (B, G, C_in / G, T) -> (B, C_in, T)
            grad_input = torch.matmul(taps, flat).view(batch, in_channels, length)
        if need_weight:
            # sum over the batch of (G, C_in / G, T) @ (G, T, C_out / G * K)
            xg = x.reshape(batch, groups, group_in, length)
            if batch == 0:  # an empty batch contributes nothing
                grad_weight = x.new_zeros((groups, group_in, per_group))
            else:
                grad_weight = torch.bmm(xg[0], flat[0].transpose(1, 2))
            for b in range(1, batch):
                grad_weight.baddbmm_(xg[b], flat[b].transpose(1, 2))
    if grad_input is not None:
        grad_input = grad_input.contiguous()
    if grad_weight is not None:
        # (G, C_in / G, C_out / G * K) -> (C_in, C_out / G, K)
        grad_weight = grad_weight.reshape(in_channels, group_out, kernel_size)
    return grad_input, grad_weight


__all__ = [
    "add_runs_into_cover", "cached_blocks", "columns", "column_backward", "copy_runs_from_cover",
    "fold_batch", "gather", "scatter", "split_frames", "sums_into_cover",
]
