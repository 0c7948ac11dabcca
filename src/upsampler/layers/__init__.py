"""nn.Modules built on the from-scratch op: the transposed convolution and upsampling blocks."""

from upsampler.layers.conv_transpose import ConvTranspose1d, TrimmedConvTranspose1d
from upsampler.layers.upsamplers import (
    UPSAMPLERS,
    ResizeConv1d,
    SubpixelConv1d,
    icnr_,
    make_upsampler,
)
from upsampler.layers.resblocks import ResBlock1, ResBlock2
from upsampler.layers.upsample_block import MRF, UpsampleBlock

__all__ = [
    "ConvTranspose1d", "TrimmedConvTranspose1d", "UPSAMPLERS", "make_upsampler", "ResizeConv1d", "SubpixelConv1d", "icnr_",
    "ResBlock1", "ResBlock2", "MRF", "UpsampleBlock",
]
