"""Chunked inference that equals offline inference, on explicit state.

- :mod:`.protocol`: ``Stream`` (pure ``init_state`` / ``step`` / ``flush``), ``Context``,
  ``Clock``, ``new_stream``, ``register_stream``, ``stream_context``;
- :mod:`.streams`, :mod:`.filters`, :mod:`.overlap_add`, :mod:`.resamplers`: the streams
  every layer is made of; :mod:`.short_conv`: the convolutions of short streaming windows;
- :mod:`.modules`: ``StreamingModule``, ``Pointwise``, ``PaddedFilter`` and torch's rules;
- :mod:`.sessions`: ``StreamSession``, ``StreamingConvTranspose1d``, ``StreamingGenerator``;
- :mod:`.step`: one fixed-size step as a module for ``torch.export`` and ONNX.
"""

from upsampler.streaming.filters import PaddedFilterStream, conv_stream
from upsampler.streaming.modules import PaddedFilter, Pointwise, StreamingModule
from upsampler.streaming.overlap_add import ConvTransposeStream
from upsampler.streaming.protocol import (
    Clock,
    Context,
    Stream,
    new_stream,
    register_stream,
    stream_context,
)
from upsampler.streaming.sessions import (
    StreamClosedError,
    StreamingConvTranspose1d,
    StreamingGenerator,
    StreamSession,
    generator_context,
)
from upsampler.streaming.streams import ChainStream, MeanStream, PointwiseStream, ResidualStream

__all__ = [
    "Stream", "Context", "Clock", "new_stream", "register_stream", "stream_context",
    "PointwiseStream", "ChainStream", "ResidualStream", "MeanStream", "PaddedFilterStream",
    "ConvTransposeStream", "conv_stream", "StreamingModule", "Pointwise", "PaddedFilter",
    "StreamSession", "StreamClosedError", "StreamingConvTranspose1d", "StreamingGenerator",
    "generator_context",
]
