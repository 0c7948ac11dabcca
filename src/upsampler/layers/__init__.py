"""nn.Modules built on the from-scratch op: the transposed convolution and upsampling blocks."""

from upsampler.conv_transpose.module import ConvTranspose1d, TrimmedConvTranspose1d
from upsampler.layers.upsamplers import (
    UPSAMPLERS,
    ResizeConv1d,
    SubpixelConv1d,
    icnr_,
    make_upsampler,
)
from upsampler.layers.resblocks import ResBlock1, ResBlock2, ResidualBlock
from upsampler.layers.upsample_block import MRF, UpsampleBlock
from upsampler.layers.weight_norm import apply_weight_norm, remove_weight_norm
from upsampler.layers.snake import Snake, SnakeBeta
from upsampler.layers.activation1d import Activation1d
from upsampler.layers.antialias import DownSample1d, LowPassFilter1d, UpSample1d
from upsampler.layers.amp import AMPBlock1, AMPBlock2

__all__ = [
    "ConvTranspose1d", "TrimmedConvTranspose1d", "UPSAMPLERS", "make_upsampler", "ResizeConv1d", "SubpixelConv1d", "icnr_",
    "ResBlock1", "ResBlock2", "ResidualBlock", "MRF", "UpsampleBlock",
    "apply_weight_norm", "remove_weight_norm",
    "Snake", "SnakeBeta", "LowPassFilter1d", "UpSample1d", "DownSample1d", "Activation1d",
    "AMPBlock1", "AMPBlock2",
]
