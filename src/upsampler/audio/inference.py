"""Inference over whole inputs: copy synthesis, and long inputs in exact overlapping windows.

:func:`copy_synthesis` runs waveform -> mel -> waveform in one pass and returns exactly
the input's length. For inputs too long for one pass, :func:`vocode_in_windows` and
:func:`log_mel_in_windows` work in windows whose output equals one offline pass.

Output sample ``j`` of a generator reads mel frame ``t`` only if ``t * hop`` lies in
``[j - left, j + right]`` (its receptive field, in output samples:
:func:`upsampler.streaming.generator_context`, exact for every upsampler kind). So the
samples of frames ``[a, b)`` are exact when the generator sees frames
``[a - ceil(left / hop), b + ceil(right / hop))`` (clipped to the mel): every layer's
padding at the window's edges lies outside what those samples read. Windows of
``window_frames`` frames plus that context go through the generator one at a time and
only their core samples are kept, so memory is bounded by the window, not the input.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from upsampler.lengths import ceil_div, check_int
from upsampler.streaming import generator_context


@torch.no_grad()
def copy_synthesis(generator: nn.Module, mel_transform: nn.Module, wav: Tensor) -> Tensor:
    """Waveform -> mel -> waveform of exactly ``wav``'s length: ``(B, L) -> (B, L)``.

    The waveform is zero-padded at the end to a multiple of the hop, so the mel has
    ``ceil(L / hop)`` frames and the generator returns ``ceil(L / hop) * hop >= L``
    samples, trimmed back to ``L`` (the original returns ``floor(L / hop) * hop``).
    A 1-D ``(L,)`` input gives ``(L,)``.
    Runs without gradients.
    """
    hop = generator.hop_length
    if getattr(mel_transform, "hop_length", None) != hop:
        raise ValueError(
            f"mel_transform.hop_length={getattr(mel_transform, 'hop_length', None)} must equal "
            f"generator.hop_length={hop}"
        )
    if not isinstance(wav, Tensor) or wav.dim() not in (1, 2):
        found = tuple(wav.shape) if isinstance(wav, Tensor) else type(wav).__name__
        raise ValueError(f"wav must be a (L,) or (B, L) tensor, got {found}")
    length = wav.shape[-1]
    n_fft = getattr(mel_transform, "n_fft", None)
    if n_fft is not None:  # name the caller's length, not the hop-padded one check_wav sees
        shortest_padded = max(hop, (n_fft - hop) // 2 + 1)
        shortest = (ceil_div(shortest_padded, hop) - 1) * hop + 1
        if length < shortest:
            raise ValueError(
                f"wav must have at least {shortest} samples for n_fft={n_fft}, "
                f"hop_length={hop}, got {length}"
            )
    padded = F.pad(wav, (0, ceil_div(length, hop) * hop - length))
    mel = mel_transform(padded)
    if mel.dim() == 2:
        mel = mel.unsqueeze(0)  # (num_mels, T) -> (1, num_mels, T)
    audio = generator(mel).squeeze(1)  # (B, 1, T * hop) -> (B, T * hop)
    audio = audio[..., :length]
    return audio.squeeze(0) if wav.dim() == 1 else audio


def context_frames(generator: nn.Module) -> tuple[int, int]:
    """Frames of context a window needs on each side for exact samples.

    Raises ``TypeError`` for a generator with a layer that has no streaming rule (its
    receptive field is unknown).
    """
    left, right = generator_context(generator)
    hop = int(generator.hop_length)
    return ceil_div(max(left, 0), hop), ceil_div(max(right, 0), hop)


@torch.inference_mode()
def vocode_in_windows(
    generator: nn.Module, mel: Tensor, window_frames: int, emit: Callable[[Tensor], None]
) -> int:
    """Vocode ``mel (num_mels, T)`` window by window; ``emit`` each piece ``(n,)``; return ``T * hop``.

    The concatenated pieces equal ``generator(mel[None])[0, 0]`` (float rounding aside).
    """
    check_int("window_frames", window_frames, 1)
    if mel.dim() != 2:
        raise ValueError(f"mel must have shape (num_mels, T), got {tuple(mel.shape)}")
    hop = int(generator.hop_length)
    before, after = context_frames(generator)
    frames = mel.shape[-1]
    for start in range(0, frames, window_frames):
        stop = min(start + window_frames, frames)
        first, last = max(0, start - before), min(frames, stop + after)
        # (num_mels, last - first) -> (1, 1, (last - first) * hop) -> core samples of [start, stop)
        audio = generator(mel[None, :, first:last])[0, 0]
        emit(audio[(start - first) * hop:(stop - first) * hop])
    return frames * hop


def log_mel_in_windows(mel_transform: nn.Module, wav: Tensor, window_frames: int) -> Tensor:
    """``mel_transform(wav)`` for ``wav (L,)``, computed ``window_frames`` frames at a time.

    Frame ``f`` of HiFi-GAN's log-mel reads samples ``[f * hop - pad, f * hop - pad + n_fft)``
    with ``pad = (n_fft - hop) // 2`` (reflected at the ends), so a window of frames
    ``[a, b)`` is exact from the samples around it plus ``pad`` extra on each side,
    trimmed to the frames whose reads lie inside (or at the true ends of) ``wav``.
    """
    check_int("window_frames", window_frames, 1)
    hop, n_fft = int(mel_transform.hop_length), int(mel_transform.n_fft)
    pad = (n_fft - hop) // 2
    frames = wav.shape[-1] // hop
    extra = ceil_div(pad + n_fft, hop)  # frames of margin that cover one frame's reach
    pieces = []
    for start in range(0, frames, window_frames):
        stop = min(start + window_frames, frames)
        first, last = max(0, start - extra), min(frames, stop + extra)
        segment = wav[first * hop:wav.shape[-1] if last == frames else last * hop]
        mel = mel_transform(segment)  # frames of segment: offset by `first`
        pieces.append(mel[:, start - first:stop - first])
    return torch.cat(pieces, dim=-1)


__all__ = ["context_frames", "copy_synthesis", "log_mel_in_windows", "vocode_in_windows"]
