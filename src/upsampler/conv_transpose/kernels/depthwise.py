"""Depthwise transposed convolution (one input and one output channel per group).

The block adds of :mod:`upsampler.conv_transpose.kernels.blocks`, but each run of taps is
multiplied and added straight into its output block, so the ``(B, C, K, T)`` columns are never stored.
"""

from __future__ import annotations

from typing import Optional

from torch import Tensor

from upsampler.conv_transpose.plan import frame_layout, split_frames, tap_blocks


def depthwise_forward(
    x: Tensor, weight: Tensor, bias: Optional[Tensor], stride: int, padding: int,
    output_padding: int, dilation: int,
) -> Tensor:
    """Depthwise (one input and one output channel per group): ``(B, C, T) -> (B, C, L)``.

    Each run of taps is one broadcast multiply-add straight into its output block,
    ``frames[t + a, r0::dilation] += x[t] * w[k0 : k0 + m]``, so the ``(B, C, K, T)``
    columns (a product per tap that is read back once) are never stored.
    """
    batch, channels, length = x.shape
    kernel_size = weight.shape[2]
    taps = weight.view(1, channels, 1, kernel_size)
    extra_frames, remainder = frame_layout(kernel_size, stride, padding, output_padding, dilation)
    out = x.new_empty((batch, channels, (length + extra_frames) * stride + remainder))
    if bias is None:
        out.zero_()
    else:
        out.copy_(bias.view(1, channels, 1).expand_as(out))
    frames, tail = split_frames(out, length, extra_frames, stride)
    samples = x.unsqueeze(3)  # (B, C, T, 1)
    blocks, _ = tap_blocks(kernel_size, length, stride, padding, output_padding, dilation)
    for k0, m, a, r0, t0, t1, mt, t_tail in blocks:
        if t1 > t0:
            phases = r0 + (m - 1) * dilation + 1
            dst = frames[:, :, t0 + a : t1 + a, r0:phases:dilation]
            dst.addcmul_(samples[:, :, t0:t1], taps[..., k0 : k0 + m])
        if mt > 0:
            tail_phases = r0 + (mt - 1) * dilation + 1
            dst = tail[:, :, r0:tail_phases:dilation]
            dst.addcmul_(samples[:, :, t_tail], taps[:, :, 0, k0 : k0 + mt])
    return out


__all__ = ["depthwise_forward"]
