"""Sessions: one object holding a stream's state over an utterance, with the checks.

Every streaming API of the package is a :class:`StreamSession` around the pure stream of
:mod:`upsampler.streaming.protocol`: ``module.streaming()`` sessions,
:class:`StreamingConvTranspose1d` and :class:`StreamingGenerator`. One life cycle for all::

    step(chunk)* -> flush() -> closed: step/flush raise StreamClosedError -> reset() -> ...

A chunk may have any length (a stream whose layers need whole groups of samples, such as
a strided conv, holds the remainder until the next chunk or ``flush``). A chunk with the
wrong shape, dtype, device, batch or (where asked) non-finite values raises before the
state changes, so the session stays usable.
"""

from __future__ import annotations

import math
from typing import Optional

import torch
from torch import Tensor, nn

from upsampler.conv_transpose.module import ConvTranspose1d
from upsampler.lengths import check_int, look_ahead_frames
from upsampler.streaming.overlap_add import ConvTransposeStream
from upsampler.streaming.protocol import State, new_stream, stream_context

HIFIGAN_SAMPLE_RATE = 22050  # sampling_rate of HiFi-GAN's config_v1/v2/v3.json (LJSpeech)
MS_PER_SECOND = 1000.0


class StreamClosedError(RuntimeError):
    """A stream that ended with ``flush()`` got another call; ``reset()`` reopens it."""


class StreamSession:
    """The state of ``module``'s stream over one utterance: ``step`` per chunk, ``flush``.

    ``channels`` (if given) is checked on every chunk, as are ``batch_size`` and, with
    ``finite``, the values. ``received`` / ``emitted`` count input and output samples.
    """

    def __init__(
        self,
        module: nn.Module,
        channels: Optional[int] = None,
        batch_size: Optional[int] = None,
        finite: bool = False,
        what: str = "chunk",
        unit: str = "samples",
        channels_name: Optional[str] = None,
    ) -> None:
        self.module, self.channels, self.batch_size = module, channels, batch_size
        self.finite, self.what, self.unit = finite, what, unit
        self.label = "C" if channels is None else str(channels)
        if channels_name is not None:
            self.label = f"{channels_name}={channels}"
        self.stream = new_stream(module).planned()
        self.reset()

    def reset(self) -> None:
        """Forget every chunk: the next ``step`` starts a new utterance."""
        self.state: Optional[State] = None
        self.pending: Optional[Tensor] = None  # input short of the stream's quantum
        self.unbatched: Optional[bool] = None
        self.received = self.emitted = 0
        self.closed = False
        self._batch = self.batch_size

    def check(self, chunk: Tensor) -> None:
        """Raise (one line, state untouched) unless ``chunk`` can continue this stream."""
        what = self.what
        if self.closed:
            raise StreamClosedError("step() after flush(): the stream has ended; call reset()")
        if not isinstance(chunk, Tensor):
            raise TypeError(f"{what} must be a torch.Tensor, got {type(chunk).__name__}")
        label = self.label
        if chunk.dim() not in (2, 3) or (self.channels is not None
                                         and chunk.shape[-2] != self.channels):
            raise ValueError(
                f"{what} must have shape (B, {label}, T) or ({label}, T), got {tuple(chunk.shape)}"
            )
        weight = next(self.module.parameters(), None)
        if weight is not None and (chunk.dtype != weight.dtype or chunk.device != weight.device):
            raise TypeError(
                f"{what} must be {weight.dtype} on {weight.device} like the module's weights, "
                f"got {chunk.dtype} on {chunk.device}"
            )
        if self.unbatched is not None and (chunk.dim() == 2) != self.unbatched:
            raise ValueError(
                f"{what} must keep the stream's batched or unbatched form, (B, C, T) or (C, T)")
        batch = 1 if chunk.dim() == 2 else chunk.shape[0]
        if self._batch is not None and batch != self._batch:
            raise ValueError(
                f"{what} batch size {batch} differs from the stream's {self._batch}; "
                f"call reset() to start a new stream"
            )
        if self.finite and not bool(torch.isfinite(chunk).all()):
            raise ValueError(f"{what} contains NaN or Inf values; it must be finite")

    def step(self, chunk: Tensor) -> Tensor:
        """``(B, C_in, m) -> (B, C_out, n)`` (or unbatched): the samples that became final."""
        self.check(chunk)
        self.unbatched = chunk.dim() == 2
        x = chunk.unsqueeze(0) if self.unbatched else chunk
        if self.state is None:
            self._batch = x.shape[0]
            self.state = self.stream.init_state(x.shape[0], x.dtype, x.device)
        if self.pending is not None:
            x = torch.cat([self.pending, x], dim=-1)
        whole = x.shape[-1] - x.shape[-1] % self.stream.quantum
        self.pending = x[:, :, whole:] if whole < x.shape[-1] else None
        y, self.state = self.stream.step(x[:, :, :whole], self.state)
        self.received += chunk.shape[-1]
        self.emitted += y.shape[-1]
        return y.squeeze(0) if self.unbatched else y

    def flush(self) -> Tensor:
        """End the utterance: the rest of the output; the session is then closed."""
        if self.closed:
            raise StreamClosedError("flush() after flush(): the stream has ended; call reset()")
        if self.state is None or self.received == 0:
            raise ValueError(f"flush() before any input: the stream has received 0 {self.unit}")
        y = self.stream.flush(self.state, self.pending)
        self.closed, self.state, self.pending = True, None, None
        self.emitted += y.shape[-1]
        return y.squeeze(0) if self.unbatched else y


class SessionModule(nn.Module):
    """An ``nn.Module`` face on a :class:`StreamSession` (``self.session``): ``step`` (also
    ``forward``) per chunk, ``flush``, ``reset``; ``received`` / ``emitted`` / ``closed``."""

    session: StreamSession

    received = property(lambda self: self.session.received, doc="Input so far (samples, frames).")
    emitted = property(lambda self: self.session.emitted, doc="Output samples so far.")
    closed = property(lambda self: self.session.closed, doc="Flushed and not yet reset.")

    def reset(self) -> None:
        """Forget every chunk: the next ``step`` starts a new stream."""
        self.session.reset()

    def step(self, chunk: Tensor) -> Tensor:
        """``(B, C_in, m) -> (B, C_out, n)`` (or unbatched): the output samples that became
        final (``n`` varies)."""
        return self.session.step(chunk)

    def forward(self, chunk: Tensor) -> Tensor:
        """Same as :meth:`step`: ``(B, C_in, m) -> (B, C_out, n)``."""
        return self.step(chunk)

    def flush(self) -> Tensor:
        """End the stream: ``(B, C_out, rest)``, every output sample not yet returned."""
        return self.session.flush()


class StreamingConvTranspose1d(SessionModule):
    """Streams a ``ConvTranspose1d`` (ours or torch's): ``step`` per chunk, then ``flush``.

    Chunks are ``(B, C_in, m)`` or unbatched ``(C_in, m)``; the state (the overlap-add
    tail) is created on the chunk's device and dtype, which must match the layer's weight.
    """

    def __init__(self, layer: nn.Module) -> None:
        super().__init__()
        if not isinstance(layer, (ConvTranspose1d, nn.ConvTranspose1d)):
            raise TypeError(
                f"layer must be upsampler.ConvTranspose1d or torch.nn.ConvTranspose1d, "
                f"got {type(layer).__name__}"
            )
        self.layer = layer
        self.session = StreamSession(layer, channels=layer.in_channels)
        stream = self.session.stream
        assert isinstance(stream, ConvTransposeStream)  # the rule of every transposed layer
        self.stride, self.padding = stream.stride, stream.padding
        self.output_padding, self.tail_length = stream.output_padding, stream.tail_length


def generator_context(generator: nn.Module) -> tuple[int, int]:
    """``(left, right)`` receptive field of a generator, in output samples.

    Output sample ``j`` reads mel frame ``t`` only if ``t * hop_length`` is in
    ``[j - left, j + right]``; the bound is tight for weights without zero taps.
    """
    context = stream_context(generator)
    return math.ceil(context.left), math.ceil(context.right)


class StreamingGenerator(SessionModule):
    """Vocodes a mel arriving in chunks: ``step`` per chunk, then ``flush``.

    Concatenated outputs equal ``generator(mel)`` on the whole mel (float32 rounding).
    Chunks are ``(B, num_mels, m)`` or unbatched ``(num_mels, m)``, any ``m``. Output
    sample ``j`` reads mel frame ``t`` only if ``t * hop_length`` is in ``[j - left, j +
    right]``; ``left_context`` / ``right_context`` (samples), ``look_ahead_frames`` and
    ``latency_ms`` (look-ahead at ``sample_rate``) say how far. For speed, fold weight
    norm first (``generator.remove_weight_norm()``) and step under
    ``torch.inference_mode()``.
    """

    def __init__(self, generator: nn.Module, sample_rate: int = HIFIGAN_SAMPLE_RATE) -> None:
        super().__init__()
        self.generator = generator
        self.hop_length: int = generator.hop_length
        self.num_mels: int = generator.num_mels
        self.sample_rate = check_int("sample_rate", sample_rate, 1)
        self.session = StreamSession(generator, self.num_mels, finite=True, what="mel chunk",
                                     unit="frames", channels_name="num_mels")
        context = self.session.stream.context
        self.left_context, self.right_context = math.ceil(context.left), math.ceil(context.right)
        self.look_ahead_frames = look_ahead_frames(self.right_context, self.hop_length)

    @property
    def latency_ms(self) -> float:
        """Algorithmic latency: the look-ahead frames' duration in milliseconds."""
        return self.look_ahead_frames * self.hop_length * MS_PER_SECOND / self.sample_rate
