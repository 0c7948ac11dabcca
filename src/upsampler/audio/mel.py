"""HiFi-GAN's waveform -> log-mel front end.

The log-mel follows jik876/hifi-gan ``meldataset.mel_spectrogram``: reflect-pad by
``(n_fft - hop_length) // 2`` on both sides, ``stft(center=False)`` with a Hann window,
magnitude ``sqrt(re^2 + im^2 + 1e-9)``, slaney mel filterbank, ``log(clamp(x, 1e-5))``.
A waveform of ``L`` samples gives ``L // hop_length`` frames::

    |pad|<------------- L samples ------------->|pad|     pad = (n_fft - hop) // 2
    [ n_fft ]
       hop  [ n_fft ]
                ...                   [ n_fft ]          frames = L // hop
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any, Optional

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from upsampler.lengths import check_int

MAGNITUDE_EPS = 1e-9  # inside the sqrt of the magnitude, as the original
LOG_CLAMP = 1e-5  # floor before the log (dynamic_range_compression_torch)
BACKENDS = ("librosa", "torchaudio")


@functools.lru_cache(maxsize=8)
def _librosa_filterbank(
    sample_rate: int, n_fft: int, num_mels: int, fmin: float, fmax: Optional[float]
) -> np.ndarray:
    import librosa  # imported on first use: ``import upsampler`` stays free of it

    return librosa.filters.mel(sr=sample_rate, n_fft=n_fft, n_mels=num_mels, fmin=fmin, fmax=fmax)


def mel_filterbank(
    sample_rate: int, n_fft: int, num_mels: int, fmin: float, fmax: Optional[float],
    backend: str = "librosa",
) -> Tensor:
    """Slaney mel filterbank ``(num_mels, n_fft // 2 + 1)``, float32.

    "librosa" is the original's ``librosa.filters.mel``; "torchaudio" is
    ``torchaudio.functional.melscale_fbanks`` (imported only here, on request).
    """
    if backend == "librosa":
        # a copy: the cached array is shared, and a transform's buffer may be written in place
        cached = _librosa_filterbank(sample_rate, n_fft, num_mels, fmin, fmax)
        return torch.from_numpy(cached).clone()
    if backend != "torchaudio":
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    try:
        import torchaudio.functional as AF
    except ImportError as err:
        raise ImportError(
            'backend="torchaudio" needs torchaudio: pip install "upsampler[torchaudio]", '
            'or use backend="librosa"'
        ) from err
    fbank = AF.melscale_fbanks(
        n_freqs=n_fft // 2 + 1, f_min=float(fmin), f_max=float(fmax or sample_rate / 2),
        n_mels=num_mels, sample_rate=sample_rate, norm="slaney", mel_scale="slaney",
    )
    return fbank.t().contiguous()  # (n_freqs, num_mels) -> (num_mels, n_freqs)


def check_wav(wav: Tensor, n_fft: int, hop_length: int) -> None:
    """``wav`` must be finite float ``(L,)`` or ``(B, L)`` with room for reflect padding."""
    if not isinstance(wav, Tensor):
        raise TypeError(f"wav must be a torch.Tensor, got {type(wav).__name__}")
    if not wav.is_floating_point():
        raise TypeError(f"wav must be a floating-point tensor, got dtype {wav.dtype}")
    if wav.dim() not in (1, 2):
        raise ValueError(f"wav must have shape (L,) or (B, L), got shape {tuple(wav.shape)}")
    shortest = max(hop_length, (n_fft - hop_length) // 2 + 1)
    if wav.shape[-1] < shortest:
        raise ValueError(
            f"wav must have at least {shortest} samples for n_fft={n_fft}, "
            f"hop_length={hop_length}, got {wav.shape[-1]}"
        )
    if not bool(torch.isfinite(wav).all()):
        raise ValueError("wav contains NaN or Inf values; it must be finite")


def log_mel(
    wav: Tensor, mel_basis: Tensor, window: Tensor, n_fft: int, hop_length: int
) -> Tensor:
    """HiFi-GAN's log-mel: ``(B, L) -> (B, num_mels, L // hop_length)``, ``(L,)`` -> 2-D."""
    check_wav(wav, n_fft, hop_length)
    squeeze = wav.dim() == 1
    batch = wav.unsqueeze(0) if squeeze else wav  # (L,) -> (1, L)
    pad = (n_fft - hop_length) // 2
    # (B, L) -> (B, 1, L) for reflect padding, back to (B, L + 2 * pad)
    padded = F.pad(batch.unsqueeze(1), (pad, pad), mode="reflect").squeeze(1)
    spec = torch.stft(
        padded, n_fft, hop_length=hop_length, win_length=window.shape[0],
        window=window.to(padded), center=False, normalized=False, onesided=True,
        return_complex=True,
    )
    # (B, F, frames) complex -> (B, F, frames, 2) real
    magnitude = torch.sqrt(torch.view_as_real(spec).pow(2).sum(-1) + MAGNITUDE_EPS)
    mel = torch.matmul(mel_basis.to(magnitude), magnitude)
    mel = torch.log(torch.clamp(mel, min=LOG_CLAMP))
    return mel.squeeze(0) if squeeze else mel


class MelSpectrogram(nn.Module):
    """HiFi-GAN's log-mel front end: ``(B, L) -> (B, num_mels, L // hop_length)``.

    A 1-D ``(L,)`` input gives ``(num_mels, L // hop_length)``. The filterbank and window
    are non-persistent buffers (they follow ``.to(device)``, stay out of the state_dict).
    """

    def __init__(
        self,
        sample_rate: int = 22050,
        n_fft: int = 1024,
        hop_length: int = 256,
        win_length: int = 1024,
        num_mels: int = 80,
        fmin: float = 0.0,
        fmax: Optional[float] = 8000.0,
        backend: str = "librosa",
    ) -> None:
        super().__init__()
        for name, value in (("sample_rate", sample_rate), ("n_fft", n_fft),
                            ("hop_length", hop_length), ("num_mels", num_mels)):
            check_int(name, value, 1)
        check_int("win_length", win_length, 1)
        if win_length > n_fft:
            raise ValueError(f"win_length must be <= n_fft={n_fft}, got {win_length}")
        nyquist = sample_rate / 2
        if not 0 <= fmin < (fmax if fmax is not None else nyquist) <= nyquist:
            raise ValueError(
                f"need 0 <= fmin < fmax <= sample_rate / 2 = {nyquist}, "
                f"got fmin={fmin}, fmax={fmax}"
            )
        self.sample_rate, self.n_fft, self.hop_length = sample_rate, n_fft, hop_length
        self.win_length, self.num_mels, self.fmin, self.fmax = win_length, num_mels, fmin, fmax
        self.backend = backend
        basis = mel_filterbank(sample_rate, n_fft, num_mels, fmin, fmax, backend)
        self.register_buffer("mel_basis", basis, persistent=False)
        self.register_buffer("window", torch.hann_window(win_length), persistent=False)

    def forward(self, wav: Tensor) -> Tensor:
        """``(B, L) -> (B, num_mels, L // hop_length)`` log-mel, on ``wav``'s device."""
        return log_mel(wav, self.mel_basis, self.window, self.n_fft, self.hop_length)


# HiFi-GAN's config.json field -> MelSpectrogram argument
HIFIGAN_AUDIO_FIELDS = {"sampling_rate": "sample_rate", "n_fft": "n_fft", "hop_size": "hop_length",
                        "win_size": "win_length", "num_mels": "num_mels", "fmin": "fmin",
                        "fmax": "fmax"}


def mel_kwargs_from_config(config: Mapping[str, Any]) -> Optional[dict[str, Any]]:
    """``MelSpectrogram`` arguments from a HiFi-GAN ``config.json`` dict, or None.

    None when the config names no audio field (a generator-only config); a ``ValueError``
    naming the missing fields when it names only some of them.
    """
    present = [field for field in HIFIGAN_AUDIO_FIELDS if field in config]
    if not present:
        return None
    missing = [field for field in HIFIGAN_AUDIO_FIELDS if field not in config]
    if missing:
        raise ValueError(f"config has audio fields {present} but lacks {missing}; a config.json "
                         f"that sets the mel front end needs all of {list(HIFIGAN_AUDIO_FIELDS)}")
    return {name: config[field] for field, name in HIFIGAN_AUDIO_FIELDS.items()}


def mel_spectrogram(
    wav: Tensor,
    sample_rate: int = 22050,
    n_fft: int = 1024,
    hop_length: int = 256,
    win_length: int = 1024,
    num_mels: int = 80,
    fmin: float = 0.0,
    fmax: Optional[float] = 8000.0,
) -> Tensor:
    """HiFi-GAN's log-mel of ``wav``: ``(B, L) -> (B, num_mels, L // hop_length)``, or
    ``(L,) -> (num_mels, L // hop_length)``, computed on ``wav``'s device.
    """
    transform = MelSpectrogram(sample_rate, n_fft, hop_length, win_length, num_mels, fmin, fmax)
    return transform.to(wav.device)(wav)


__all__ = [
    "BACKENDS",
    "HIFIGAN_AUDIO_FIELDS",
    "LOG_CLAMP",
    "MAGNITUDE_EPS",
    "MelSpectrogram",
    "check_wav",
    "log_mel",
    "mel_filterbank",
    "mel_kwargs_from_config",
    "mel_spectrogram",
]
