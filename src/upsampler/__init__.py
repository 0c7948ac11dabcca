"""upsampler: length-exact vocoder upsampling layers built on a from-scratch ConvTranspose1d."""

from upsampler import analysis, audio, export, functional, lengths, streaming
from upsampler.layers import MRF, ConvTranspose1d, ResBlock1, ResBlock2, UpsampleBlock
from upsampler.models import BigVGANGenerator, HiFiGANGenerator, load_bigvgan, load_hifigan
from upsampler.streaming import StreamingConvTranspose1d, StreamingGenerator

__all__ = [
    "ConvTranspose1d", "MRF", "ResBlock1", "ResBlock2", "UpsampleBlock",
    "HiFiGANGenerator", "load_hifigan", "StreamingConvTranspose1d", "StreamingGenerator",
    "BigVGANGenerator", "load_bigvgan",
    "analysis", "audio", "export", "functional", "lengths", "streaming",
]
