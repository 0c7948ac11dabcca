"""Streams (:mod:`upsampler.streaming.protocol`) for the anti-aliased resamplers.

Both resamplers are replicate-padded sliding-window filters, so both stream as a
``PaddedFilterStream``: a window is computed once all its inputs have arrived and the right
edge (the last sample repeated) is known at ``flush``; the edge samples therefore wait for
their right context. ``UpSample1d`` is written as the windows it really computes::

    output samples [w * r, (w + 1) * r)  read input samples  x[w + lo .. w + hi]

so window ``w`` gives ``r`` outputs from ``span = hi - lo + 1`` inputs (7 for ratio 2, 12 taps:
``x[w-3 .. w+3]``), each phase ``q`` taking the taps ``q + pad_left - r * n`` of ``ratio *
filter`` that land on the window. ``Activation1d`` streams as up -> act -> down (BigVGAN's
plain path, equal to the polyphase forward up to rounding).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from upsampler.streaming.filters import PaddedFilterStream
from upsampler.streaming.protocol import Stream
from upsampler.streaming.streams import ChainStream, PointwiseStream

REPLICATE = "replicate"


def upsample_window(ratio: int, kernel_size: int, pad: int, pad_left: int) -> tuple[int, int]:
    """``(lo, hi)``: window ``w`` of ``UpSample1d`` reads ``x[w + lo .. w + hi]``."""
    # output w * r + q reads padded sample n (x index n - pad) when 0 <= w r + q + pad_left - r n < K
    lo = min(math.ceil((q + pad_left - kernel_size + 1) / ratio) for q in range(ratio))
    hi = max((q + pad_left) // ratio for q in range(ratio))
    return lo - pad, hi - pad


def upsample_stream(up: "torch.nn.Module") -> Stream:
    """``UpSample1d`` as a stream: ``(B, C, m) -> (B, C, ratio * n)`` per step."""
    ratio, kernel_size, channels = up.ratio, up.kernel_size, up.channels
    lo, hi = upsample_window(ratio, kernel_size, up.pad, up.pad_left)
    span = hi - lo + 1
    taps = up.filter.reshape(-1) * ratio
    weight = taps.new_zeros(ratio, span)
    for q in range(ratio):
        for m in range(span):
            tap = q + up.pad_left - ratio * (lo + up.pad + m)
            if 0 <= tap < kernel_size:
                weight[q, m] = taps[tap]
    weight = weight.repeat(channels, 1).unsqueeze(1)  # (r, span) -> (C r, 1, span)

    def valid(x: Tensor) -> Tensor:
        batch, _, length = x.shape
        phases = F.conv1d(x, weight, groups=channels)  # (B, C r, W)
        windows = phases.shape[-1]
        # (B, C r, W) -> (B, C, r, W) -> (B, C, W, r) -> (B, C, W r)
        phases = phases.reshape(batch, channels, ratio, windows).transpose(2, 3)
        return phases.reshape(batch, channels, windows * ratio)

    return PaddedFilterStream(valid, channels, span, -lo, hi, REPLICATE, hop=1, up=ratio,
                              in_channels=channels)


def lowpass_stream(lowpass: "torch.nn.Module", channels: int) -> Stream:
    """``LowPassFilter1d`` on ``channels`` channels as a stream (``stride`` inputs per output)."""
    weight = lowpass.filter.expand(channels, -1, -1)  # (1, 1, K) -> (C, 1, K)
    stride = lowpass.stride

    def valid(x: Tensor) -> Tensor:
        return F.conv1d(x, weight, stride=stride, groups=channels)

    return PaddedFilterStream(valid, channels, lowpass.kernel_size, lowpass.pad_left,
                              lowpass.pad_right, REPLICATE, hop=stride, in_channels=channels)


def activation_stream(activation: "torch.nn.Module") -> Stream:
    """``Activation1d``: up -> act -> down, or ``act`` alone when ``anti_alias`` is off."""
    if not activation.anti_alias:
        return PointwiseStream(activation.act)
    return ChainStream([
        upsample_stream(activation.upsample),
        PointwiseStream(activation.act),
        lowpass_stream(activation.downsample.lowpass, activation.channels),
    ])
