"""nn.Modules built on the from-scratch op: the transposed convolution and upsampling blocks."""

from upsampler.layers.conv_transpose import ConvTranspose1d
from upsampler.layers.upsamplers import UPSAMPLERS, make_upsampler

__all__ = ["ConvTranspose1d", "UPSAMPLERS", "make_upsampler"]
