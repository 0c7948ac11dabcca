"""The matrix products on either side of the overlap-add: input to columns, columns to gradients.

Columns are channels-first, ``(B, C_out, K, T)``: column ``(c, k, t)`` is output channel
``c``'s tap ``k`` of input step ``t``. The layout names how the product is run (chosen by
:mod:`upsampler.conv_transpose.dispatch`): ``mm`` one plain matrix product (batch 1, one
group: a batched matmul costs about 3x the call overhead), ``fold`` the batch folded into the
product's columns (``(C_in, B * T)``: a short input repacks the weight once instead of ``B``
times), ``batched`` one batched ``matmul``, ``elementwise`` a broadcast product (one input and
one output channel per group). Every function assumes checked arguments.
"""

from __future__ import annotations

from typing import Optional, Tuple

import torch
from torch import Tensor

MM, FOLD, BATCHED, ELEMENTWISE = "mm", "fold", "batched", "elementwise"  # product layouts


def columns(x: Tensor, weight: Tensor, groups: int, layout: str) -> Tensor:
    """One matrix product: ``(B, C_in, T) -> (B, C_out, K, T)`` columns (maybe a permuted view)."""
    batch, in_channels, length = x.shape
    _, group_out, kernel_size = weight.shape
    group_in = in_channels // groups
    out_channels = groups * group_out
    if layout == ELEMENTWISE:
        # (B, C, 1, T) * (1, C, K, 1) -> (B, C, K, T)
        return x.unsqueeze(2) * weight.reshape(1, out_channels, kernel_size, 1)
    # (C_in, C_out / G, K) -> (G, C_in / G, C_out / G * K) -> (G, C_out / G * K, C_in / G)
    taps = weight.reshape(groups, group_in, group_out * kernel_size).transpose(1, 2)
    if layout == MM:
        return torch.mm(taps[0], x[0]).view(1, out_channels, kernel_size, length)
    if layout == FOLD:
        # (B, C_in, T) -> (C_in, B, T) -> (G, C_in / G, B * T)
        flat = x.transpose(0, 1).reshape(groups, group_in, batch * length)
        cols = torch.matmul(taps, flat)
        # (G, C_out / G * K, B * T) -> (C_out, K, B, T) -> (B, C_out, K, T)
        return cols.view(out_channels, kernel_size, batch, length).permute(2, 0, 1, 3)
    # (B, C_in, T) -> (B, G, C_in / G, T) -> (B, G, C_out / G * K, T) -> (B, C_out, K, T)
    cols = torch.matmul(taps, x.reshape(batch, groups, group_in, length))
    return cols.view(batch, out_channels, kernel_size, length)


def column_grads(
    cols: Tensor, x: Tensor, weight: Tensor, groups: int, layout: str, need_input: bool,
    need_weight: bool,
) -> Tuple[Optional[Tensor], Optional[Tensor]]:
    """Gradients of input ``(B, C_in, T)`` and weight ``(C_in, C_out / G, K)`` from the
    gathered output-gradient columns ``(B, C_out, K, T)`` (stored ``(C_out, K, B, T)`` under
    ``fold``); in-place accumulation over the batch, for eager autograd."""
    batch, in_channels, length = x.shape
    _, group_out, kernel_size = weight.shape
    group_in = in_channels // groups
    per_group = group_out * kernel_size
    # (C_in, C_out / G, K) -> (G, C_in / G, C_out / G * K)
    taps = weight.reshape(groups, group_in, per_group)
    grad_input: Optional[Tensor] = None
    grad_weight: Optional[Tensor] = None
    if layout == MM:
        flat = cols.reshape(per_group, length)
        if need_input:
            grad_input = torch.mm(taps[0], flat).view(1, in_channels, length)
        if need_weight:
            grad_weight = torch.mm(x[0], flat.t()).view(1, in_channels, per_group)
    elif layout == FOLD:
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


def column_grads_out_of_place(
    cols: Tensor, x: Tensor, weight: Tensor, groups: int, need_input: bool, need_weight: bool,
) -> Tuple[Optional[Tensor], Optional[Tensor]]:
    """:func:`column_grads` in batched products without in-place writes (``torch.func``)."""
    batch, in_channels, length = x.shape
    _, group_out, kernel_size = weight.shape
    group_in = in_channels // groups
    per_group = group_out * kernel_size
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


__all__ = ["BATCHED", "ELEMENTWISE", "FOLD", "MM", "column_grads", "column_grads_out_of_place", "columns"]
