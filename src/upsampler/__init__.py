"""upsampler: length-exact vocoder upsampling layers built on a from-scratch ConvTranspose1d."""

import sys

from upsampler import analysis, audio, export, lengths, streaming
from upsampler.conv_transpose import functional
from upsampler.export import onnx_layout
from upsampler.layers import MRF, ConvTranspose1d, ResBlock1, ResBlock2, UpsampleBlock
from upsampler.models import BigVGANGenerator, HiFiGANGenerator, load_bigvgan, load_hifigan
from upsampler.streaming import StreamingConvTranspose1d, StreamingGenerator

# Import paths from before the op and the export became packages: ``upsampler.functional``
# is ``upsampler.conv_transpose.functional``, ``upsampler.onnx_layout`` is
# ``upsampler.export.onnx_layout`` (the same module objects, so ``import`` works too).
sys.modules[f"{__name__}.functional"] = functional
sys.modules[f"{__name__}.onnx_layout"] = onnx_layout

__all__ = [
    "ConvTranspose1d", "MRF", "ResBlock1", "ResBlock2", "UpsampleBlock",
    "HiFiGANGenerator", "load_hifigan", "StreamingConvTranspose1d", "StreamingGenerator",
    "BigVGANGenerator", "load_bigvgan",
    "analysis", "audio", "export", "functional", "lengths", "onnx_layout", "streaming",
]
