"""Anti-aliased resampling as BigVGAN does it: Kaiser-windowed sinc low-pass filters.

``kaiser_sinc_filter1d`` (:mod:`upsampler.layers.kaiser`, re-exported here) designs the
filter (12 taps for ratio 2, cutoff ``0.5 / ratio``, half transition width ``0.6 / ratio``,
unit DC gain). ``UpSample1d`` inserts samples with our
``ConvTranspose1d`` (depthwise, stride = ratio, gain = ratio), ``DownSample1d`` low-passes
and keeps every ratio-th sample. Both replicate-pad their input, so no edge falls to zero.
For ratio 2 and 12 taps::

    UpSample1d    x (T)  --replicate pad 5 | 5-->  T + 10
                  --transposed conv, stride 2, 12 taps--> 2 (T + 9) + 12 = 2T + 30
                  --cut 15 | 15-->  2T
    DownSample1d  z (2T) --replicate pad 5 | 6-->  2T + 11  --conv, stride 2-->  T

Buffers are named ``filter`` (``(1, 1, K)``) as in BigVGAN's checkpoints, which store them.
``Activation1d`` (up x2 -> activation -> down x2) is in :mod:`upsampler.layers.activation1d`.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from upsampler.conv_transpose.module import ConvTranspose1d
from upsampler.layers.kaiser import (
    CUTOFF_PER_RATIO,
    HALF_WIDTH_PER_RATIO,
    default_kernel_size,
    kaiser_attenuation,
    kaiser_beta,
    kaiser_sinc_filter1d,
    ratio_filter,
)
from upsampler.streaming import Stream, StreamingModule
from upsampler.streaming.resamplers import upsample_stream
from upsampler.lengths import check_int

class LowPassFilter1d(nn.Module):
    """Depthwise low-pass with replicate padding, then every ``stride``-th sample.

    Pads ``K // 2 - 1`` left and ``K // 2`` right for even ``K`` (``K // 2`` both sides for
    odd), so ``stride=1`` keeps the length.
    """

    def __init__(
        self, cutoff: float = 0.5, half_width: float = 0.6, stride: int = 1, kernel_size: int = 12
    ) -> None:
        super().__init__()
        self.stride = check_int("stride", stride, 1)
        self.kernel_size = check_int("kernel_size", kernel_size, 2)
        even = int(kernel_size % 2 == 0)
        self.pad_left = kernel_size // 2 - even
        self.pad_right = kernel_size // 2
        self.register_buffer("filter", kaiser_sinc_filter1d(cutoff, half_width, kernel_size))

    def forward(self, x: Tensor) -> Tensor:
        """``(B, C, T * stride) -> (B, C, T)`` (``ceil(L / stride)`` for any length ``L``)."""
        channels = x.shape[1]
        x = F.pad(x, (self.pad_left, self.pad_right), mode="replicate")
        weight = self.filter.expand(channels, -1, -1)  # (1, 1, K) -> (C, 1, K)
        return F.conv1d(x, weight, stride=self.stride, groups=channels)


class UpSample1d(StreamingModule):
    """``ratio`` times more samples through our depthwise ``ConvTranspose1d``, anti-aliased.

    The transposed conv's weight is ``ratio * filter`` for every channel (a buffer kept
    equal to ``filter`` whenever a state_dict is loaded). Its full output on the padded
    input is ``ratio * T + pad_left + pad_right`` samples; ``pad_left`` and ``pad_right`` are
    cut (equal for even ratios, one more on the right for odd ones, as in BigVGAN), so ``T``
    samples always give exactly ``ratio * T``.
    """

    def __init__(self, channels: int, ratio: int = 2, kernel_size: int | None = None) -> None:
        super().__init__()
        self.channels = check_int("channels", channels, 1)
        self.ratio = check_int("ratio", ratio, 1)
        self.kernel_size = default_kernel_size(ratio) if kernel_size is None else kernel_size
        check_int("kernel_size", self.kernel_size, 2)
        self.pad = self.kernel_size // ratio - 1  # replicate padding of the input
        self.pad_left = self.pad * ratio + (self.kernel_size - ratio) // 2
        self.register_buffer("filter", ratio_filter(ratio, self.kernel_size))
        self.conv = ConvTranspose1d(
            channels, channels, self.kernel_size, stride=ratio, groups=channels, bias=False
        )
        del self.conv.weight
        self.conv.register_buffer("weight", self._conv_weight(), persistent=False)
        self.register_load_state_dict_post_hook(UpSample1d._refresh_conv_weight)

    def _conv_weight(self) -> Tensor:
        """``ratio * filter`` for each channel: ``(1, 1, K) -> (C, 1, K)``."""
        return (self.ratio * self.filter).repeat(self.channels, 1, 1)

    @staticmethod
    def _refresh_conv_weight(module: nn.Module, incompatible_keys: Any) -> None:
        with torch.no_grad():
            module.conv.weight.copy_(module._conv_weight())

    def forward(self, x: Tensor) -> Tensor:
        """``(B, C, T) -> (B, C, T * ratio)``."""
        length = x.shape[-1]
        x = F.pad(x, (self.pad, self.pad), mode="replicate")  # (B, C, T + 2 pad)
        y = self.conv(x)  # (B, C, ratio * T + pad_left + pad_right)
        return y[..., self.pad_left : self.pad_left + length * self.ratio]

    def new_stream(self) -> Stream:
        return upsample_stream(self)

    def extra_repr(self) -> str:
        return f"{self.channels}, ratio={self.ratio}, kernel_size={self.kernel_size}"


class DownSample1d(nn.Module):
    """Low-pass at ``0.5 / ratio`` then keep every ``ratio``-th sample (submodule ``lowpass``)."""

    def __init__(self, ratio: int = 2, kernel_size: int | None = None) -> None:
        super().__init__()
        self.ratio = check_int("ratio", ratio, 1)
        self.kernel_size = default_kernel_size(ratio) if kernel_size is None else kernel_size
        self.lowpass = LowPassFilter1d(
            CUTOFF_PER_RATIO / ratio, HALF_WIDTH_PER_RATIO / ratio, ratio, self.kernel_size
        )

    def forward(self, x: Tensor) -> Tensor:
        """``(B, C, T * ratio) -> (B, C, T)``."""
        return self.lowpass(x)


__all__ = [
    "DownSample1d", "LowPassFilter1d", "UpSample1d", "default_kernel_size",
    "kaiser_attenuation", "kaiser_beta", "kaiser_sinc_filter1d",
]
