"""Interchangeable upsamplers: each maps ``(B, C_in, T) -> (B, C_out, T * stride)`` exactly.

``make_upsampler(kind, ...)`` is the one switch that blocks, generators and configs use.
"""

from __future__ import annotations

from typing import Callable

from torch import nn

from upsampler.layers.conv_transpose import ConvTranspose1d
from upsampler.lengths import check_int, exact_padding


def transposed_upsampler(
    in_channels: int, out_channels: int, stride: int, kernel_size: int
) -> ConvTranspose1d:
    """Our ``ConvTranspose1d`` with ``(padding, output_padding)`` from ``exact_padding``."""
    padding, output_padding = exact_padding(kernel_size, stride)
    return ConvTranspose1d(
        in_channels, out_channels, kernel_size, stride, padding, output_padding
    )


UPSAMPLERS: dict[str, Callable[[int, int, int, int], nn.Module]] = {
    "transposed": transposed_upsampler,
}


def make_upsampler(
    kind: str, in_channels: int, out_channels: int, stride: int, kernel_size: int
) -> nn.Module:
    """Build the upsampler named ``kind`` (one of ``UPSAMPLERS``)."""
    if kind not in UPSAMPLERS:
        raise ValueError(f"upsampler kind must be one of {sorted(UPSAMPLERS)}, got {kind!r}")
    check_int("stride", stride, 1)
    check_int("kernel_size", kernel_size, 1)
    return UPSAMPLERS[kind](in_channels, out_channels, stride, kernel_size)
