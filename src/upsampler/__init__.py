"""upsampler: length-exact vocoder upsampling layers built on a from-scratch ConvTranspose1d."""

from upsampler import functional, lengths
from upsampler.layers import ConvTranspose1d

__all__ = ["ConvTranspose1d", "functional", "lengths"]
