"""Chunked inference that equals offline inference: a streaming transposed conv and generator."""

from upsampler.streaming.conv_transpose import StreamClosedError, StreamingConvTranspose1d

__all__ = ["StreamClosedError", "StreamingConvTranspose1d"]
