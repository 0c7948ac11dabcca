"""How a module opts in to streaming, and the rules of torch's own layers.

A module streams in one of four ways:

- subclass :class:`StreamingModule` and define ``new_stream(self) -> Stream`` from the
  streams of its children (``new_stream(child)``) and the generic streams (pointwise,
  chain, residual, branch mean in :mod:`~upsampler.streaming.streams`, padded filter in
  :mod:`~upsampler.streaming.filters`, overlap-add in
  :mod:`~upsampler.streaming.overlap_add`); a container needs nothing else;
- subclass :class:`Pointwise` if ``forward`` acts on each time step alone (activations);
- subclass :class:`PaddedFilter` and define ``valid`` for a sliding-window op on a zero-
  or replicate-padded input (low-pass filters, strided convs with asymmetric padding);
- ``register_stream(cls, rule)`` for a class one cannot subclass (torch's own layers and
  this package's ``ConvTranspose1d`` are registered here).

The offline ``forward`` stays the one description of the computation: leaves stream by
running their own arithmetic on the samples they hold, containers by composing their
children's streams in the order their ``forward`` composes the children. A
``StreamingModule`` also carries a session (:class:`~upsampler.streaming.sessions.StreamSession`)::

    with model.streaming(batch_size=1):
        for chunk in chunks:
            play(model.step(chunk))
        play(model.flush())   # ends the utterance: the session is closed until reset()
"""

from __future__ import annotations

import contextlib
from typing import Iterator, Optional

import torch.nn.functional as F
from torch import Tensor, nn

from upsampler.conv_transpose.module import ConvTranspose1d
from upsampler.lengths import check_int
from upsampler.streaming.filters import PAD_MODES, PaddedFilterStream, conv_stream
from upsampler.streaming.overlap_add import ConvTransposeStream
from upsampler.streaming.protocol import Stream, new_stream, register_stream
from upsampler.streaming.sessions import StreamSession
from upsampler.streaming.streams import ChainStream, PointwiseStream

POINTWISE_ACTIVATIONS = (
    nn.Identity, nn.LeakyReLU, nn.ReLU, nn.Tanh, nn.Sigmoid, nn.SiLU, nn.GELU, nn.ELU,
    nn.Hardtanh,
)


class StreamingModule(nn.Module):
    """Base for modules that stream: define ``new_stream``; get ``streaming``/``step``/``flush``.

    ``with module.streaming(batch_size):`` opens a session (``module.stream_session``);
    ``step`` takes ``(B, C, m)`` or unbatched ``(C, m)`` chunks of any length, ``flush``
    ends the utterance and closes the session until ``module.stream_session.reset()``.
    """

    stream_session: Optional[StreamSession] = None

    def new_stream(self) -> Stream:
        """A fresh stream of this module; containers compose their children's streams."""
        raise NotImplementedError(f"{type(self).__name__} must define new_stream()")

    @contextlib.contextmanager
    def streaming(self, batch_size: Optional[int] = None) -> Iterator["StreamingModule"]:
        """Open a session for the ``with`` block; ``batch_size`` (if given) is checked per chunk."""
        if self.stream_session is not None:
            raise RuntimeError(f"{type(self).__name__} is already streaming")
        self.stream_session = StreamSession(self, batch_size=batch_size)
        try:
            yield self
        finally:
            self.stream_session = None

    def _session(self) -> StreamSession:
        if self.stream_session is None:
            raise RuntimeError("step()/flush() outside `with module.streaming():`")
        return self.stream_session

    def step(self, chunk: Tensor) -> Tensor:
        """``(B, C_in, m) -> (B, C_out, n)`` (or unbatched): the samples that became final."""
        return self._session().step(chunk)

    def flush(self) -> Tensor:
        """The rest of the output once the input has ended; the session is then closed."""
        return self._session().flush()


class Pointwise(StreamingModule):
    """Base for modules whose ``forward`` acts on each time step alone (activations)."""

    def new_stream(self) -> Stream:
        return PointwiseStream(self.forward)


class PaddedFilter(StreamingModule):
    """Base for ``forward(x) = valid(pad(x))``: a sliding-window op on a padded input.

    ``valid`` maps ``L`` samples to ``((L - span) // hop + 1) * up`` samples, window ``w``
    reading ``[w * hop, w * hop + span)`` (see ``PaddedFilterStream``); ``pad_mode`` is
    "zeros" or "replicate". ``forward`` and the stream both call ``valid``, so the
    computation is written once. ``(B, C_in, T) -> (B, out_channels, T_out)``.
    """

    def __init__(
        self,
        out_channels: int,
        span: int,
        pad_left: int,
        pad_right: int,
        pad_mode: str = "zeros",
        hop: int = 1,
        up: int = 1,
        in_channels: Optional[int] = None,
    ) -> None:
        super().__init__()
        check_int("out_channels", out_channels, 1)
        check_int("span", span, 1)
        check_int("pad_left", pad_left, 0)
        check_int("pad_right", pad_right, 0)
        check_int("hop", hop, 1)
        check_int("up", up, 1)
        if pad_mode not in PAD_MODES:
            raise ValueError(f"pad_mode must be one of {PAD_MODES}, got {pad_mode!r}")
        self.out_channels, self.span, self.hop, self.up = out_channels, span, hop, up
        self.pad_left, self.pad_right, self.pad_mode = pad_left, pad_right, pad_mode
        self.in_channels = out_channels if in_channels is None else in_channels

    def valid(self, x: Tensor) -> Tensor:
        """The op on an already padded input, ``(B, C_in, L) -> (B, C_out, n * up)``."""
        raise NotImplementedError(f"{type(self).__name__} must define valid()")

    def forward(self, x: Tensor) -> Tensor:
        """``(B, C_in, T) -> (B, out_channels, ((T + pads - span) // hop + 1) * up)``."""
        mode = "constant" if self.pad_mode == "zeros" else self.pad_mode
        return self.valid(F.pad(x, (self.pad_left, self.pad_right), mode=mode))

    def new_stream(self) -> Stream:
        return PaddedFilterStream(
            self.valid, self.out_channels, self.span, self.pad_left, self.pad_right,
            self.pad_mode, self.hop, self.up, in_channels=self.in_channels,
        )


def _sequential_stream(module: nn.Module) -> Stream:
    return ChainStream([new_stream(child) for child in module])


def _pointwise_stream(module: nn.Module) -> Stream:
    # ``forward`` directly: a streaming step calls it per chunk, without the hook dispatch
    return PointwiseStream(module.forward)


for _activation in POINTWISE_ACTIVATIONS:
    register_stream(_activation, _pointwise_stream)
register_stream(nn.Sequential, _sequential_stream)
register_stream(nn.Conv1d, conv_stream)
register_stream(nn.ConvTranspose1d, ConvTransposeStream)
register_stream(ConvTranspose1d, ConvTransposeStream)

__all__ = ["StreamingModule", "Pointwise", "PaddedFilter", "POINTWISE_ACTIVATIONS"]
