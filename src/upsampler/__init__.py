"""upsampler: length-exact vocoder upsampling layers built on a from-scratch ConvTranspose1d."""

from upsampler import functional, lengths
from upsampler.layers import MRF, ConvTranspose1d, ResBlock1, ResBlock2, UpsampleBlock
from upsampler import audio
from upsampler.models import HiFiGANGenerator, load_hifigan
from upsampler import analysis
from upsampler import export, streaming
from upsampler.streaming import StreamingConvTranspose1d, StreamingGenerator

__all__ = [
    "ConvTranspose1d", "functional", "lengths",
    "MRF", "ResBlock1", "ResBlock2", "UpsampleBlock", "HiFiGANGenerator", "load_hifigan", "audio",
    "analysis",
    "export", "streaming", "StreamingConvTranspose1d", "StreamingGenerator",
]
