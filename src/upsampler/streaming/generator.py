"""Chunked HiFi-GAN vocoding that equals offline ``forward`` on the whole mel.

The generator is non-causal: output sample ``j`` reads mel frame ``t`` only if
``t * hop_length`` lies in ``[j - left, j + right]``, with ``(left, right)`` the
receptive field composed layer by layer (``lengths.chain_context``)::

    conv_pre (k7)      left 3, right 3                   frames
    ups[i] (k, u, p)   left k - 1 - p, right p           x u
    MRF                max over branches of the summed conv reaches (same padding)
    conv_post (k7)     left 3, right 3                   samples

After ``N`` frames, samples ``j < N * hop_length - right`` have read nothing beyond
the mel received, so they are final; a frame's audio is complete
``look_ahead_frames = ceil(right / hop_length)`` frames later (HiFi-GAN V1:
right = 3258 samples, 13 frames, 150.9 ms at 22.05 kHz).

``StreamingGenerator`` has two exact modes that emit the same samples at the same time:

- ``cache=True`` (default): every layer streams with its own state
  (:mod:`upsampler.streaming.cached`), so each sample is computed once;
- ``cache=False``: keep the mel frames still needed as left context, rerun ``forward``
  on them plus the new chunk, emit only final samples. Frames before ``a`` are dropped
  once every unemitted sample ``j`` satisfies ``j >= (a - 1) * hop + left + 1`` (then
  nothing it reads lies before ``a``). Works for any module with the generator's
  ``forward``; costs about ``(left + right) / hop`` frames of recomputation per chunk.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor, nn

from upsampler.layers import ConvTranspose1d
from upsampler.lengths import (
    chain_context,
    check_int,
    conv_context,
    look_ahead_frames,
    transposed_context,
)
from upsampler.streaming.cached import generator_stream
from upsampler.streaming.conv_transpose import StreamClosedError, crop_padding

HIFIGAN_SAMPLE_RATE = 22050  # sampling_rate of HiFi-GAN's config_v1/v2/v3.json (LJSpeech)
MS_PER_SECOND = 1000.0

Layer = tuple[int, int, int]  # (stride, left, right), see lengths.chain_context


def _conv_layer(conv: nn.Module, where: str) -> Layer:
    if not isinstance(conv, nn.Conv1d):
        raise TypeError(f"{where} must be an nn.Conv1d, got {type(conv).__name__}")
    if conv.stride != (1,) or isinstance(conv.padding, str):
        raise ValueError(
            f"{where} must have stride 1 and integer padding, got stride={conv.stride}, "
            f"padding={conv.padding!r}"
        )
    return (1, *conv_context(conv.kernel_size[0], conv.dilation[0], conv.padding[0]))


def _transposed_layer(up: nn.Module, where: str) -> Layer:
    if not isinstance(up, (ConvTranspose1d, nn.ConvTranspose1d)):
        raise TypeError(
            f"{where} must be a transposed convolution (upsampler='transposed') for "
            f"streaming, got {type(up).__name__}"
        )
    stride, padding = up.stride[0], crop_padding(up)[0]
    return (stride, *transposed_context(up.kernel_size[0], stride, padding, up.dilation[0]))


def _branch_layer(resblock: nn.Module, where: str) -> Layer:
    """A residual block's reach: every conv of ResBlock1/ResBlock2 is on its residual chain."""
    convs = [m for m in resblock.modules() if isinstance(m, nn.Conv1d)]
    if not convs:
        raise TypeError(f"{where} has no nn.Conv1d; cannot compute its receptive field")
    return (1, *chain_context([_conv_layer(c, where) for c in convs]))


def generator_context(generator: nn.Module) -> tuple[int, int]:
    """``(left, right)`` receptive field of a HiFi-GAN generator, in output samples.

    Output sample ``j`` reads mel frame ``t`` only if ``t * hop_length`` is in
    ``[j - left, j + right]``; the bound is tight for weights without zero taps.
    """
    layers = [_conv_layer(generator.conv_pre, "conv_pre")]
    for i, up in enumerate(generator.ups):
        layers.append(_transposed_layer(up, f"ups[{i}]"))
        first = i * generator.num_kernels
        branches = [
            _branch_layer(generator.resblocks[index], f"resblocks[{index}]")
            for index in range(first, first + generator.num_kernels)
        ]
        layers.append((1, max(b[1] for b in branches), max(b[2] for b in branches)))
    layers.append(_conv_layer(generator.conv_post, "conv_post"))
    return chain_context(layers)


class StreamingGenerator(nn.Module):
    """Vocodes a mel arriving in chunks: ``step`` per chunk, then ``flush``.

    Concatenated outputs equal ``generator(mel)`` on the whole mel (float32 rounding).
    ``cache`` picks the per-layer cached graph (default) or left-context recomputation.
    Attributes: ``left_context`` / ``right_context`` (samples), ``look_ahead_frames``,
    ``latency_ms`` (look-ahead at ``sample_rate``). For speed, fold weight norm first
    (``generator.remove_weight_norm()``): a parametrized weight is recomputed per call.
    A chunk with the wrong shape, dtype, device or non-finite values raises before the
    state changes; after ``flush()`` the stream is closed until ``reset()``.
    """

    def __init__(
        self, generator: nn.Module, sample_rate: int = HIFIGAN_SAMPLE_RATE, cache: bool = True
    ) -> None:
        super().__init__()
        self.left_context, self.right_context = generator_context(generator)
        self.generator = generator
        self.cache = cache
        self._graph = generator_stream(generator) if cache else None
        self.hop_length: int = generator.hop_length
        self.num_mels: int = generator.num_mels
        self.sample_rate = check_int("sample_rate", sample_rate, 1)
        self.look_ahead_frames = look_ahead_frames(self.right_context, self.hop_length)
        self.reset()

    @property
    def latency_ms(self) -> float:
        """Algorithmic latency: the look-ahead frames' duration in milliseconds."""
        return self.look_ahead_frames * self.hop_length * MS_PER_SECOND / self.sample_rate

    def reset(self) -> None:
        """Forget every chunk: the next ``step`` starts a new utterance."""
        self._frames: Optional[Tensor] = None  # mel frames [start, received), cache=False
        self._batch: Optional[int] = None
        if self._graph is not None:
            self._graph.reset()
        self.start = 0
        self.received = 0
        self.emitted = 0
        self.closed = False

    def _check_chunk(self, mel: Tensor) -> None:
        if self.closed:
            raise StreamClosedError("step() after flush(): the stream has ended; call reset()")
        if not isinstance(mel, Tensor):
            raise TypeError(f"mel must be a torch.Tensor, got {type(mel).__name__}")
        if mel.dim() != 3 or mel.shape[1] != self.num_mels:
            raise ValueError(
                f"mel chunk must have shape (B, num_mels={self.num_mels}, T), "
                f"got {tuple(mel.shape)}"
            )
        weight = self.generator.conv_pre.weight
        if mel.dtype != weight.dtype or mel.device != weight.device:
            raise TypeError(
                f"mel chunk must be {weight.dtype} on {weight.device} like the generator, "
                f"got {mel.dtype} on {mel.device}"
            )
        if self._batch is not None and mel.shape[0] != self._batch:
            raise ValueError(
                f"mel chunk batch size {mel.shape[0]} differs from the stream's "
                f"{self._batch}; call reset() to start a new stream"
            )
        if not bool(torch.isfinite(mel).all()):
            raise ValueError("mel chunk contains NaN or Inf values; it must be finite")

    def _synthesize(self, frames: Tensor, stop: int) -> Tensor:
        """Samples ``[emitted, stop)`` from the frames ``[start, received)``."""
        offset = self.start * self.hop_length
        audio = self.generator(frames)  # (B, num_mels, W) -> (B, 1, W * hop_length)
        out = audio[:, :, self.emitted - offset : stop - offset]
        self.emitted = stop
        return out

    def step(self, mel: Tensor) -> Tensor:
        """``(B, num_mels, m) -> (B, 1, n)``: the samples that became final (``n`` varies)."""
        self._check_chunk(mel)
        self._batch = mel.shape[0]
        if self._graph is not None:
            self.received += mel.shape[-1]
            out = self._graph.step(mel)
            self.emitted += out.shape[-1]
            return out
        frames = mel if self._frames is None else torch.cat([self._frames, mel], dim=-1)
        self.received += mel.shape[-1]
        ready = max(0, self.received * self.hop_length - self.right_context)
        if ready <= self.emitted:
            self._frames = frames
            return mel.new_zeros((mel.shape[0], 1, 0))
        out = self._synthesize(frames, ready)
        # frames before `start` are no longer read by any unemitted sample, and every
        # unemitted sample stays inside the window's output
        unread = (self.emitted - self.left_context - 1) // self.hop_length + 1
        start = max(self.start, min(unread, self.emitted // self.hop_length))
        self._frames = frames[:, :, start - self.start :]
        self.start = start
        return out

    def forward(self, mel: Tensor) -> Tensor:
        """Same as :meth:`step`: ``(B, num_mels, m) -> (B, 1, n)``."""
        return self.step(mel)

    def flush(self) -> Tensor:
        """End the utterance: ``(B, 1, received * hop_length - emitted)``, the rest of the audio."""
        if self.closed:
            raise StreamClosedError("flush() after flush(): the stream has ended; call reset()")
        if self.received == 0:
            raise ValueError("flush() before any mel frame: the stream has received 0 frames")
        self.closed = True
        if self._graph is not None:
            out = self._graph.flush()
            self.emitted += out.shape[-1]
            return out
        out = self._synthesize(self._frames, self.received * self.hop_length)
        self._frames = None
        return out
