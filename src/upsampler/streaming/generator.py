"""Chunked vocoding that equals offline ``forward`` on the whole mel.

``StreamingGenerator`` is a session around the generator's stream
(:mod:`upsampler.layers.streaming`): every layer keeps its own state and computes each
sample once, and each sample is emitted as soon as no later mel frame can change it.

The generator is non-causal: output sample ``j`` reads mel frame ``t`` only if
``t * hop_length`` lies in ``[j - left, j + right]``, with ``(left, right)`` the
receptive field composed layer by layer (``Context.then``)::

    conv_pre (k7)      left 3, right 3                   frames
    ups[i] (k, u, p)   left k - 1 - p, right p           x u
    MRF                max over branches of the summed conv reaches (same padding)
    conv_post (k7)     left 3, right 3                   samples

After ``N`` frames, samples ``j < N * hop_length - right`` have read nothing beyond the
mel received, so they are final; a frame's audio is complete
``look_ahead_frames = ceil(right / hop_length)`` frames later (HiFi-GAN V1:
right = 3258 samples, 13 frames, 150.9 ms at 22.05 kHz).
"""

from __future__ import annotations

import math
from typing import Optional

import torch
from torch import Tensor, nn

from upsampler.layers import new_stream, stream_context
from upsampler.lengths import check_int, look_ahead_frames
from upsampler.streaming.conv_transpose import StreamClosedError

HIFIGAN_SAMPLE_RATE = 22050  # sampling_rate of HiFi-GAN's config_v1/v2/v3.json (LJSpeech)
MS_PER_SECOND = 1000.0


def generator_context(generator: nn.Module) -> tuple[int, int]:
    """``(left, right)`` receptive field of a generator, in output samples.

    Output sample ``j`` reads mel frame ``t`` only if ``t * hop_length`` is in
    ``[j - left, j + right]``; the bound is tight for weights without zero taps.
    """
    context = stream_context(generator)
    return math.ceil(context.left), math.ceil(context.right)


class StreamingGenerator(nn.Module):
    """Vocodes a mel arriving in chunks: ``step`` per chunk, then ``flush``.

    Concatenated outputs equal ``generator(mel)`` on the whole mel (float32 rounding).
    Chunks are ``(B, num_mels, m)`` or unbatched ``(num_mels, m)``. Attributes:
    ``left_context`` / ``right_context`` (samples), ``look_ahead_frames``, ``latency_ms``
    (look-ahead at ``sample_rate``). For speed, fold weight norm first
    (``generator.remove_weight_norm()``) and step under ``torch.inference_mode()``. A chunk
    with the wrong shape, dtype, device or non-finite values raises before the state
    changes; after ``flush()`` the stream is closed until ``reset()``.
    """

    def __init__(self, generator: nn.Module, sample_rate: int = HIFIGAN_SAMPLE_RATE) -> None:
        super().__init__()
        self.generator = generator
        self.hop_length: int = generator.hop_length
        self.num_mels: int = generator.num_mels
        self.sample_rate = check_int("sample_rate", sample_rate, 1)
        self.reset()  # builds the stream once; its context is the receptive field
        context = self._stream.context
        self.left_context, self.right_context = math.ceil(context.left), math.ceil(context.right)
        self.look_ahead_frames = look_ahead_frames(self.right_context, self.hop_length)

    @property
    def latency_ms(self) -> float:
        """Algorithmic latency: the look-ahead frames' duration in milliseconds."""
        return self.look_ahead_frames * self.hop_length * MS_PER_SECOND / self.sample_rate

    def reset(self) -> None:
        """Forget every chunk: the next ``step`` starts a new utterance."""
        self._stream = new_stream(self.generator)
        self._batch: Optional[int] = None
        self._unbatched: Optional[bool] = None
        self.received = 0
        self.emitted = 0
        self.closed = False

    def _check_chunk(self, mel: Tensor) -> None:
        if self.closed:
            raise StreamClosedError("step() after flush(): the stream has ended; call reset()")
        if not isinstance(mel, Tensor):
            raise TypeError(f"mel must be a torch.Tensor, got {type(mel).__name__}")
        if mel.dim() not in (2, 3) or mel.shape[-2] != self.num_mels:
            raise ValueError(
                f"mel chunk must have shape (B, num_mels={self.num_mels}, T) or "
                f"(num_mels={self.num_mels}, T), got {tuple(mel.shape)}"
            )
        weight = next(self.generator.parameters())
        if mel.dtype != weight.dtype or mel.device != weight.device:
            raise TypeError(
                f"mel chunk must be {weight.dtype} on {weight.device} like the generator, "
                f"got {mel.dtype} on {mel.device}"
            )
        if self._unbatched is not None and (mel.dim() == 2) != self._unbatched:
            raise ValueError("mel chunk must keep the stream's batched or unbatched form")
        batch = 1 if mel.dim() == 2 else mel.shape[0]
        if self._batch is not None and batch != self._batch:
            raise ValueError(
                f"mel chunk batch size {batch} differs from the stream's {self._batch}; "
                f"call reset() to start a new stream"
            )
        if not bool(torch.isfinite(mel).all()):
            raise ValueError("mel chunk contains NaN or Inf values; it must be finite")

    def step(self, mel: Tensor) -> Tensor:
        """``(B, num_mels, m) -> (B, 1, n)``: the samples that became final (``n`` varies)."""
        self._check_chunk(mel)
        self._unbatched = mel.dim() == 2
        batched = mel.unsqueeze(0) if self._unbatched else mel
        self._batch = batched.shape[0]
        self.received += mel.shape[-1]
        out = self._stream.step(batched)
        self.emitted += out.shape[-1]
        return out.squeeze(0) if self._unbatched else out

    def forward(self, mel: Tensor) -> Tensor:
        """Same as :meth:`step`: ``(B, num_mels, m) -> (B, 1, n)``."""
        return self.step(mel)

    def flush(self) -> Tensor:
        """End the utterance: ``(B, 1, received * hop_length - emitted)``, the rest of the
        audio."""
        if self.closed:
            raise StreamClosedError("flush() after flush(): the stream has ended; call reset()")
        if self.received == 0:
            raise ValueError("flush() before any mel frame: the stream has received 0 frames")
        self.closed = True
        out = self._stream.flush()
        self.emitted += out.shape[-1]
        return out.squeeze(0) if self._unbatched else out
