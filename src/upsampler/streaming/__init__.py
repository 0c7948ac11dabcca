"""Chunked inference that equals offline inference: a streaming transposed conv and generator."""

from upsampler.streaming.conv_transpose import StreamClosedError, StreamingConvTranspose1d
from upsampler.streaming.generator import StreamingGenerator, generator_context

__all__ = [
    "StreamClosedError",
    "StreamingConvTranspose1d",
    "StreamingGenerator",
    "generator_context",
]
