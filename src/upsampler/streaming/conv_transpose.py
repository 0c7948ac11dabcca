"""Chunked transposed convolution whose concatenated output equals the one-shot output.

A thin session around the layer's stream (``upsampler.layers.overlap_add.ConvTransposeStream``:
overlap-add of each chunk onto the previous chunk's tail, each sample emitted once no later
input can change it) with the checks and the reset / closed life cycle of a public API.
"""

from __future__ import annotations

from typing import Union

from torch import Tensor, nn

from upsampler.layers import ConvTranspose1d, new_stream
from upsampler.layers.overlap_add import ConvTransposeStream

TransposedLayer = Union[ConvTranspose1d, nn.ConvTranspose1d]


class StreamClosedError(RuntimeError):
    """A stream that ended with ``flush()`` got another call; ``reset()`` reopens it."""


class StreamingConvTranspose1d(nn.Module):
    """Streams a ``ConvTranspose1d`` (ours or torch's): ``step`` per chunk, then ``flush``.

    Chunks are ``(B, C_in, m)`` or unbatched ``(C_in, m)``. The state (uncropped partial
    sums, counters) is created on the chunk's device and dtype, which must match the
    layer's weight, and cleared by ``reset()``. A chunk with the wrong shape, dtype or
    device raises before the state is touched, so the stream stays usable; after
    ``flush()`` the stream is closed and every call but ``reset()`` raises
    ``StreamClosedError``.
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
        return self._stream.stride

    @property
    def padding(self) -> int:
        """Uncropped samples cut from the start (a trimmed layer's left trim)."""
        return self._stream.padding

    @property
    def output_padding(self) -> int:
        return self._stream.output_padding

    @property
    def tail_length(self) -> int:
        """Uncropped samples past ``received * stride`` that later chunks still add to."""
        return self._stream.tail_length

    @property
    def received(self) -> int:
        """Input samples so far."""
        return self._stream.received

    @property
    def emitted(self) -> int:
        """Output samples so far."""
        return self._stream.emitted

    def reset(self) -> None:
        """Forget every chunk: the next ``step`` starts a new stream."""
        stream = new_stream(self.layer)
        assert isinstance(stream, ConvTransposeStream)  # the rule of every transposed layer
        self._stream = stream
        self._batch: int | None = None
        self._unbatched: bool | None = None
        self.closed = False

    def _check_chunk(self, chunk: Tensor, weight: Tensor) -> None:
        if self.closed:
            raise StreamClosedError("step() after flush(): the stream has ended; call reset()")
        if not isinstance(chunk, Tensor):
            raise TypeError(f"chunk must be a torch.Tensor, got {type(chunk).__name__}")
        channels = self.layer.in_channels
        if chunk.dim() not in (2, 3) or chunk.shape[-2] != channels:
            raise ValueError(
                f"chunk must have shape (B, {channels}, T) or ({channels}, T), "
                f"got {tuple(chunk.shape)}"
            )
        if chunk.dtype != weight.dtype or chunk.device != weight.device:
            raise TypeError(
                f"chunk must be {weight.dtype} on {weight.device} like the layer's weight, "
                f"got {chunk.dtype} on {chunk.device}"
            )
        if self._unbatched is not None and (chunk.dim() == 2) != self._unbatched:
            raise ValueError("chunk must keep the stream's batched (B, C, T) or unbatched form")
        batch = 1 if chunk.dim() == 2 else chunk.shape[0]
        if self._batch is not None and batch != self._batch:
            raise ValueError(
                f"chunk batch size {batch} differs from the stream's {self._batch}; call "
                f"reset() to start a new stream"
            )

    def step(self, chunk: Tensor) -> Tensor:
        """``(B, C_in, m) -> (B, C_out, n)``: the output samples that became final.

        ``n`` varies; over a stream the steps and ``flush()`` concatenate to the layer's
        output on the whole input. ``m == 0`` is allowed and returns what is ready.
        """
        self._check_chunk(chunk, self.layer.weight)
        self._unbatched = chunk.dim() == 2
        batched = chunk.unsqueeze(0) if self._unbatched else chunk
        self._batch = batched.shape[0]
        out = self._stream.step(batched)
        return out.squeeze(0) if self._unbatched else out

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
        out = self._stream.flush()
        self.closed = True
        return out.squeeze(0) if self._unbatched else out
