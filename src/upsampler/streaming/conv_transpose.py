"""Chunked transposed convolution whose concatenated output equals the one-shot output.

Each chunk of ``m`` input samples is convolved without padding or bias, giving
``(m - 1) * stride + span`` samples that start at ``received * stride`` (uncropped
positions). Its first ``span - stride`` samples overlap the previous chunk's tail and
are added to it (overlap-add); positions below ``received * stride`` get nothing from
later inputs and are final::

    uncropped:  0 ......... p ............................. N*s .... N*s + span - s
                |-- crop --|--- emitted -----|-- held --|--- tail (partial sums) ---|
                                  ready = min(N*s - p, L_out(N)) (lengths.streaming_ready_length)

The first ``padding`` samples are cropped, samples beyond the length the output would
have if the stream ended now are held back, and ``flush()`` emits the tail up to
``L_out`` (zeros past the tail where ``output_padding`` extends the output); the bias is
added as samples leave.
"""

from __future__ import annotations

from typing import Optional, Union

from torch import Tensor, nn

from upsampler.functional import conv_transpose1d
from upsampler.layers import ConvTranspose1d
from upsampler.layers.upsample_block import TrimmedConvTranspose1d
from upsampler.lengths import (
    effective_kernel_size,
    streaming_ready_length,
    transposed_output_length,
)

TransposedLayer = Union[ConvTranspose1d, nn.ConvTranspose1d]


def crop_padding(layer: TransposedLayer) -> tuple[int, int]:
    """``(padding, output_padding)`` that crop the layer's uncropped output as it does.

    The layer's own pair, or for a ``TrimmedConvTranspose1d`` (``padding=0``, then ``left``
    and ``right`` samples cut) ``(left, left - right)``: the same length formula and crop,
    with an ``output_padding`` torch's module would refuse at stride 1.
    """
    if isinstance(layer, TrimmedConvTranspose1d):
        left, right = layer.trim
        return left, left - right
    return layer.padding[0], layer.output_padding[0]


class StreamClosedError(RuntimeError):
    """A stream that ended with ``flush()`` got another call; ``reset()`` reopens it."""


class StreamingConvTranspose1d(nn.Module):
    """Streams a ``ConvTranspose1d`` (ours or torch's): ``step`` per chunk, then ``flush``.

    The state (uncropped partial sums, counters, batch size) lives on the module and is
    cleared by ``reset()``; it is created on the chunk's device and dtype, which must
    match the layer's weight. A chunk with the wrong shape, dtype or device raises
    before the state is touched, so the stream stays usable; after ``flush()`` the
    stream is closed and every call but ``reset()`` raises ``StreamClosedError``.
    """

    def __init__(self, layer: TransposedLayer) -> None:
        super().__init__()
        if not isinstance(layer, (ConvTranspose1d, nn.ConvTranspose1d)):
            raise TypeError(
                f"layer must be upsampler.ConvTranspose1d or torch.nn.ConvTranspose1d, "
                f"got {type(layer).__name__}"
            )
        self.layer = layer
        self.reset()

    @property
    def stride(self) -> int:
        return self.layer.stride[0]

    @property
    def padding(self) -> int:
        """Uncropped samples cut from the start (a trimmed layer's left trim)."""
        return crop_padding(self.layer)[0]

    @property
    def output_padding(self) -> int:
        return crop_padding(self.layer)[1]

    @property
    def tail_length(self) -> int:
        """Uncropped samples past ``received * stride`` that later chunks still add to."""
        span = effective_kernel_size(self.layer.kernel_size[0], self.layer.dilation[0])
        return max(span - self.stride, 0)

    def reset(self) -> None:
        """Forget every chunk: the next ``step`` starts a new stream."""
        self._pending: Optional[Tensor] = None  # uncropped positions [_base, received*s + tail)
        self._base = 0
        self.received = 0  # input samples so far
        self.emitted = 0  # output samples so far
        self.closed = False

    def _ready(self, received: int) -> int:
        layer = self.layer
        return streaming_ready_length(
            received, layer.kernel_size[0], self.stride, self.padding,
            self.output_padding, layer.dilation[0],
        )

    def _check_chunk(self, chunk: Tensor, weight: Tensor) -> None:
        if self.closed:
            raise StreamClosedError("step() after flush(): the stream has ended; call reset()")
        if not isinstance(chunk, Tensor):
            raise TypeError(f"chunk must be a torch.Tensor, got {type(chunk).__name__}")
        if chunk.dim() != 3 or chunk.shape[1] != self.layer.in_channels:
            raise ValueError(
                f"chunk must have shape (B, {self.layer.in_channels}, T), got {tuple(chunk.shape)}"
            )
        if chunk.dtype != weight.dtype or chunk.device != weight.device:
            raise TypeError(
                f"chunk must be {weight.dtype} on {weight.device} like the layer's weight, "
                f"got {chunk.dtype} on {chunk.device}"
            )
        if self._pending is not None and chunk.shape[0] != self._pending.shape[0]:
            raise ValueError(
                f"chunk batch size {chunk.shape[0]} differs from the stream's "
                f"{self._pending.shape[0]}; call reset() to start a new stream"
            )

    def _emit(self, buffer: Tensor, stop: int) -> Tensor:
        """Output samples ``[emitted, stop)`` of ``buffer`` (uncropped, from ``_base``) + bias."""
        start = self.emitted + self.padding - self._base
        out = buffer[:, :, start : start + stop - self.emitted]
        if self.layer.bias is not None:
            out = out + self.layer.bias[:, None]  # (C_out,) -> (C_out, 1)
        self.emitted = stop
        return out

    def step(self, chunk: Tensor) -> Tensor:
        """``(B, C_in, m) -> (B, C_out, n)``: the output samples that became final.

        ``n`` varies; over a stream the steps and ``flush()`` concatenate to the layer's
        output on the whole input. ``m == 0`` is allowed and returns what is ready.
        """
        layer = self.layer
        weight = layer.weight  # once: a weight-normed layer recomputes it on every access
        self._check_chunk(chunk, weight)
        batch, _, length = chunk.shape
        if length == 0:
            return chunk.new_zeros((batch, layer.out_channels, 0))
        # uncropped, unbiased: (B, C_in, m) -> (B, C_out, (m - 1) * stride + span)
        full = conv_transpose1d(
            chunk, weight, None, self.stride, 0, 0, layer.groups, layer.dilation[0]
        )
        start = self.received * self.stride
        received = self.received + length
        buffer = chunk.new_zeros((batch, layer.out_channels, received * self.stride
                                  + self.tail_length - self._base))
        if self._pending is not None:
            buffer[:, :, : self._pending.shape[-1]] = self._pending
        buffer[:, :, start - self._base : start - self._base + full.shape[-1]] += full
        ready = self._ready(received)
        out = self._emit(buffer, ready)
        drop = min(received * self.stride, self.padding + ready)  # final and emitted/cropped
        self._pending = buffer[:, :, drop - self._base :]
        self._base = drop
        self.received = received
        return out

    def forward(self, chunk: Tensor) -> Tensor:
        """Same as :meth:`step`: ``(B, C_in, m) -> (B, C_out, n)``."""
        return self.step(chunk)

    def flush(self) -> Tensor:
        """End the stream: ``(B, C_out, L_out - emitted)``, the rest of the output.

        Raises ``StreamClosedError`` if already flushed and ``ValueError`` if no input
        sample arrived (the layer has no output for an empty input).
        """
        if self.closed:
            raise StreamClosedError("flush() after flush(): the stream has ended; call reset()")
        if self._pending is None:
            raise ValueError("flush() before any input: the stream has received 0 samples")
        layer = self.layer
        end = transposed_output_length(
            self.received, layer.kernel_size[0], self.stride, self.padding,
            self.output_padding, layer.dilation[0],
        )
        # output_padding may reach past the tail: those positions are zero before the bias
        missing = max(0, end + self.padding - self._base - self._pending.shape[-1])
        buffer = nn.functional.pad(self._pending, (0, missing))
        out = self._emit(buffer, end)
        self._pending = None
        self.closed = True
        return out
