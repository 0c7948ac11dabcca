"""Interchangeable upsamplers: each maps ``(B, C_in, T) -> (B, C_out, T * stride)`` exactly.

``make_upsampler(kind, in_channels, out_channels, stride, kernel_size)`` is the one switch
that blocks, generators and configs use. ``kernel_size`` is always the kernel of the
transposed convolution being replaced (HiFi-GAN's ``upsample_kernel_sizes``); the other
kinds derive their own conv kernel from it so the layer sees the same stretch of signal:

==================  ==========================================  ==================================
kind                layer                                       its conv kernel
==================  ==========================================  ==================================
``transposed``      ``ConvTranspose1d``, ``exact_padding``      ``kernel_size`` at the output rate
``nearest_conv``    nearest resize, then stride-1 conv          ``resize_conv_kernel_size(k)``:
                                                                same output-rate span, made odd
``linear_conv``     linear resize, then stride-1 conv           as ``nearest_conv``
``subpixel``        conv to ``C_out * stride`` channels, then   ``subpixel_kernel_size(k, s)``:
                    1-D pixel shuffle                           ``ceil(k / s)`` input taps, odd
``subpixel_icnr``   ``subpixel`` with ICNR initialisation       as ``subpixel``
==================  ==========================================  ==================================

For V1 (k = 16, s = 8) that is 17 taps at the output rate for the resize kinds (about 8x
the multiply-adds of the transposed conv) and 3 taps at the input rate for subpixel.
The resize and subpixel layers subclass ``nn.Conv1d``, so ``weight``/``bias`` sit where
weight norm and HiFi-GAN's ``init_weights`` expect them. Re-initialising a
``subpixel_icnr`` layer's weight from outside destroys ICNR: call ``icnr_`` afterwards.

All kinds stream (:mod:`upsampler.streaming`): the resize is a padded filter at the
input rate (nearest: one sample per window; linear: three, replicate-padded as torch's
edge clamp does) chained with the conv's stream, and the subpixel layer is one padded
filter whose windows give ``stride`` samples each.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from upsampler.conv_transpose.module import ConvTranspose1d
from upsampler.streaming import ChainStream, PaddedFilterStream, Stream, StreamingModule, conv_stream
from upsampler.streaming.short_conv import TapWeights, conv1d_for_stream
from upsampler.lengths import (
    check_int,
    exact_padding,
    resize_conv_kernel_size,
    same_padding,
    subpixel_kernel_size,
)

RESIZE_MODES = ("nearest", "linear")
LINEAR_REACH = 1  # linear interpolation reads one input sample on each side


class ResizeConv1d(nn.Conv1d, StreamingModule):
    """Resize-convolution (Odena et al. 2016): resize by ``scale_factor``, then a stride-1 conv.

    ``mode="nearest"`` repeats every sample ``scale_factor`` times; ``mode="linear"`` is
    linear interpolation with half-sample alignment (torch's ``align_corners=False``).
    The conv has an odd ``kernel_size`` and same padding, so the length stays ``T * scale_factor``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        scale_factor: int,
        mode: str = "nearest",
        bias: bool = True,
    ) -> None:
        check_int("kernel_size", kernel_size, 1)
        check_int("scale_factor", scale_factor, 1)
        if kernel_size % 2 == 0:
            raise ValueError(
                f"kernel_size must be odd so the conv keeps the length, got {kernel_size}"
            )
        if mode not in RESIZE_MODES:
            raise ValueError(f"mode must be one of {RESIZE_MODES}, got {mode!r}")
        super().__init__(
            in_channels, out_channels, kernel_size, padding=same_padding(kernel_size), bias=bias
        )
        self.scale_factor = scale_factor
        self.mode = mode

    def resize(self, input: Tensor) -> Tensor:
        """The resize alone: ``(B, C_in, T) -> (B, C_in, T * scale_factor)``."""
        batch, channels, length = input.shape
        if self.mode == "nearest":
            # (B, C, T) -> (B, C, T, s) -> (B, C, T * s)
            resized = input.unsqueeze(-1).expand(batch, channels, length, self.scale_factor)
            return resized.reshape(batch, channels, length * self.scale_factor)
        return F.interpolate(
            input, size=length * self.scale_factor, mode="linear", align_corners=False
        )

    def forward(self, input: Tensor) -> Tensor:
        """``(B, C_in, T) -> (B, C_out, T * scale_factor)``."""
        return self._conv_forward(self.resize(input), self.weight, self.bias)

    def _resize_stream(self) -> PaddedFilterStream:
        scale = self.scale_factor
        if self.mode == "nearest":
            return PaddedFilterStream(self.resize, self.in_channels, 1, 0, 0, up=scale,
                                      in_channels=self.in_channels)

        def interior(window: Tensor) -> Tensor:
            # the outer samples only feed the interpolation; their own outputs are dropped
            return self.resize(window)[:, :, LINEAR_REACH * scale : -LINEAR_REACH * scale]

        span = 2 * LINEAR_REACH + 1
        return PaddedFilterStream(
            interior, self.in_channels, span, LINEAR_REACH, LINEAR_REACH, "replicate", up=scale,
            in_channels=self.in_channels,
        )

    def new_stream(self) -> Stream:
        return ChainStream([self._resize_stream(), conv_stream(self)])

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, scale_factor={self.scale_factor}, mode={self.mode!r}"


def icnr_(weight: Tensor, scale_factor: int) -> Tensor:
    """ICNR (Aitken et al. 2017), in place: copy each output channel's kernel to all its phases.

    ``weight`` is a subpixel conv weight ``(C_out * scale_factor, C_in, K)`` whose channel
    ``c * scale_factor + r`` feeds phase ``r`` of output channel ``c``. After the call every
    phase holds the kernel that phase 0 had, so the layer equals conv-then-nearest-repeat:
    a nearest resize followed by that kernel dilated by ``scale_factor``.
    """
    check_int("scale_factor", scale_factor, 1)
    if weight.shape[0] % scale_factor != 0:
        raise ValueError(
            f"weight.shape[0]={weight.shape[0]} must be a multiple of scale_factor={scale_factor}"
        )
    with torch.no_grad():
        # (C_out * s, C_in, K) -> (C_out, s, C_in, K); phase 0 copied over phases 1..s-1
        phases = weight.view(weight.shape[0] // scale_factor, scale_factor, *weight.shape[1:])
        phases.copy_(phases[:, :1].expand_as(phases))
    return weight


class SubpixelConv1d(nn.Conv1d, StreamingModule):
    """Subpixel upsampler (Shi et al. 2016): conv to ``C_out * s`` channels, then 1-D pixel shuffle.

    Channel ``c * s + r`` of the conv becomes phase ``r`` (output samples ``t * s + r``) of
    output channel ``c``. ``icnr=True`` initialises with :func:`icnr_` (bias copied too), so
    at initialisation a constant input gives a constant output away from the edges.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        scale_factor: int,
        icnr: bool = False,
        bias: bool = True,
    ) -> None:
        check_int("out_channels", out_channels, 1)
        check_int("kernel_size", kernel_size, 1)
        check_int("scale_factor", scale_factor, 1)
        if kernel_size % 2 == 0:
            raise ValueError(
                f"kernel_size must be odd so the conv keeps the length, got {kernel_size}"
            )
        self.scale_factor = scale_factor
        self.icnr = icnr
        super().__init__(
            in_channels,
            out_channels * scale_factor,
            kernel_size,
            padding=same_padding(kernel_size),
            bias=bias,
        )
        self.upsampled_channels = out_channels

    def reset_parameters(self) -> None:
        """torch's default conv init, then ICNR copies when ``icnr`` is set."""
        super().reset_parameters()
        if getattr(self, "icnr", False):
            icnr_(self.weight, self.scale_factor)
            if self.bias is not None:
                icnr_(self.bias.view(-1, 1), self.scale_factor)

    def shuffle(self, phases: Tensor) -> Tensor:
        """1-D pixel shuffle: ``(B, C_out * s, T) -> (B, C_out, T * s)``."""
        batch, _, length = phases.shape
        # (B, C_out * s, T) -> (B, C_out, s, T) -> (B, C_out, T, s) -> (B, C_out, T * s)
        phases = phases.reshape(batch, self.upsampled_channels, self.scale_factor, length)
        shuffled = phases.permute(0, 1, 3, 2)
        return shuffled.reshape(batch, self.upsampled_channels, length * self.scale_factor)

    def forward(self, input: Tensor) -> Tensor:
        """``(B, C_in, T) -> (B, C_out, T * scale_factor)``."""
        return self.shuffle(self._conv_forward(input, self.weight, self.bias))

    def new_stream(self) -> Stream:
        tap_weights = TapWeights()

        def valid(window: Tensor) -> Tensor:
            return self.shuffle(
                conv1d_for_stream(window, self.weight, self.bias, 1, 1, 1, tap_weights))

        padding = self.padding[0]
        return PaddedFilterStream(
            valid, self.upsampled_channels, self.kernel_size[0], padding, padding,
            up=self.scale_factor, in_channels=self.in_channels,
        )

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, scale_factor={self.scale_factor}, icnr={self.icnr}"


def transposed_upsampler(
    in_channels: int, out_channels: int, stride: int, kernel_size: int
) -> ConvTranspose1d:
    """Our ``ConvTranspose1d`` with ``(padding, output_padding)`` from ``exact_padding``."""
    padding, output_padding = exact_padding(kernel_size, stride)
    return ConvTranspose1d(
        in_channels, out_channels, kernel_size, stride, padding, output_padding
    )


def nearest_conv_upsampler(
    in_channels: int, out_channels: int, stride: int, kernel_size: int
) -> ResizeConv1d:
    """Nearest resize + conv with ``resize_conv_kernel_size(kernel_size)`` taps."""
    conv_kernel = resize_conv_kernel_size(kernel_size)
    return ResizeConv1d(in_channels, out_channels, conv_kernel, stride, "nearest")


def linear_conv_upsampler(
    in_channels: int, out_channels: int, stride: int, kernel_size: int
) -> ResizeConv1d:
    """Linear resize + conv with ``resize_conv_kernel_size(kernel_size)`` taps."""
    conv_kernel = resize_conv_kernel_size(kernel_size)
    return ResizeConv1d(in_channels, out_channels, conv_kernel, stride, "linear")


def subpixel_upsampler(
    in_channels: int, out_channels: int, stride: int, kernel_size: int
) -> SubpixelConv1d:
    """Subpixel conv with ``subpixel_kernel_size(kernel_size, stride)`` taps, default init."""
    conv_kernel = subpixel_kernel_size(kernel_size, stride)
    return SubpixelConv1d(in_channels, out_channels, conv_kernel, stride, icnr=False)


def subpixel_icnr_upsampler(
    in_channels: int, out_channels: int, stride: int, kernel_size: int
) -> SubpixelConv1d:
    """Subpixel conv as ``subpixel``, ICNR-initialised."""
    conv_kernel = subpixel_kernel_size(kernel_size, stride)
    return SubpixelConv1d(in_channels, out_channels, conv_kernel, stride, icnr=True)


UPSAMPLERS: dict[str, Callable[[int, int, int, int], nn.Module]] = {
    "transposed": transposed_upsampler,
    "nearest_conv": nearest_conv_upsampler,
    "linear_conv": linear_conv_upsampler,
    "subpixel": subpixel_upsampler,
    "subpixel_icnr": subpixel_icnr_upsampler,
}


def make_upsampler(
    kind: str, in_channels: int, out_channels: int, stride: int, kernel_size: int
) -> nn.Module:
    """Build the upsampler named ``kind`` (one of ``UPSAMPLERS``).

    ``kernel_size`` is the transposed conv's kernel; see the module docstring for what
    each kind derives from it. Every result maps ``(B, C_in, T) -> (B, C_out, T * stride)``.
    """
    if kind not in UPSAMPLERS:
        raise ValueError(f"upsampler kind must be one of {sorted(UPSAMPLERS)}, got {kind!r}")
    check_int("in_channels", in_channels, 1)
    check_int("out_channels", out_channels, 1)
    check_int("stride", stride, 1)
    check_int("kernel_size", kernel_size, 1)
    return UPSAMPLERS[kind](in_channels, out_channels, stride, kernel_size)
