"""Validation metrics of a vocoder's output against the recording it was given: STOI, PESQ, mel L1.

Each function takes the reference and the degraded (vocoded) waveform as 1-D float tensors or
arrays of equal length (a leading ``(1, L)`` or ``(1, 1, L)`` is accepted) plus their sample
rate, and returns a Python float:

- :func:`stoi`: short-time objective intelligibility (Taal et al. 2011, ``pystoi``), 0..1,
  higher is better; any rate (``pystoi`` resamples to 10 kHz itself).
- :func:`wideband_pesq`: ITU-T P.862.2 wideband PESQ (``pesq``), MOS-LQO from about 1.04 to
  4.64, higher is better. P.862.2 is defined at 16 kHz; other rates are resampled to 16 kHz
  with librosa first, so a 22.05 kHz vocoder is scored on its 0-8 kHz band.
- :func:`mel_l1`: mean absolute difference of the two log-mels (HiFi-GAN's validation
  "Mel-Spec. Error"), lower is better.

``pystoi`` and ``pesq`` are imported on first use: ``pip install "upsampler[metrics]"``.
"""

from __future__ import annotations

from typing import Union

import librosa
import numpy as np
import torch
from torch import Tensor, nn

from upsampler.lengths import check_int

Signal = Union[Tensor, np.ndarray]
PESQ_RATE = 16000  # P.862.2 wideband PESQ is defined at 16 kHz only
INSTALL_HINT = 'pip install "upsampler[metrics]"'


def as_signal(wav: Signal, name: str) -> np.ndarray:
    """``wav`` as a finite float64 ``(L,)`` array; ``(1, L)`` and ``(1, 1, L)`` are squeezed."""
    if isinstance(wav, Tensor):
        wav = wav.detach().cpu().double().numpy() if wav.is_floating_point() else wav.numpy()
    if not isinstance(wav, np.ndarray):
        raise TypeError(f"{name} must be a torch.Tensor or numpy array, got {type(wav).__name__}")
    if not np.issubdtype(wav.dtype, np.floating):
        raise TypeError(f"{name} must hold floating-point samples in [-1, 1], got {wav.dtype}")
    signal = wav.reshape(wav.shape[-1]) if wav.ndim and wav.size == wav.shape[-1] else wav
    if signal.ndim != 1 or signal.size == 0:
        raise ValueError(f"{name} must be a non-empty (L,) waveform, got shape {wav.shape}")
    if not np.isfinite(signal).all():
        raise ValueError(f"{name} contains NaN or Inf values; it must be finite")
    return signal.astype(np.float64)


def _pair(reference: Signal, degraded: Signal) -> tuple[np.ndarray, np.ndarray]:
    ref, deg = as_signal(reference, "reference"), as_signal(degraded, "degraded")
    if ref.shape != deg.shape:
        raise ValueError(
            f"reference and degraded must have the same length, got {ref.shape[0]} and "
            f"{deg.shape[0]} samples"
        )
    return ref, deg


def stoi(reference: Signal, degraded: Signal, sample_rate: int, extended: bool = False) -> float:
    """STOI of ``degraded`` against ``reference`` (``extended=True``: ESTOI), 0..1.

    ``pystoi`` drops frames 40 dB below the reference's loudest and needs 30 frames of
    384 ms speech left; with fewer it warns and returns 1e-5.
    """
    check_int("sample_rate", sample_rate, 1)
    ref, deg = _pair(reference, degraded)
    try:
        from pystoi import stoi as pystoi_stoi
    except ImportError as err:
        raise ImportError(f"stoi needs pystoi: {INSTALL_HINT}") from err
    return float(pystoi_stoi(ref, deg, sample_rate, extended=extended))


def wideband_pesq(reference: Signal, degraded: Signal, sample_rate: int) -> float:
    """Wideband PESQ (P.862.2) of ``degraded`` against ``reference``, after resampling to 16 kHz.

    Raises ``ValueError`` where PESQ finds no speech in the reference or the signals are
    too short (``pesq`` needs about a quarter second at 16 kHz).
    """
    check_int("sample_rate", sample_rate, 1)
    ref, deg = _pair(reference, degraded)
    try:
        from pesq import PesqError, pesq
    except ImportError as err:
        raise ImportError(f"wideband_pesq needs pesq: {INSTALL_HINT}") from err
    if sample_rate != PESQ_RATE:
        ref = librosa.resample(ref, orig_sr=sample_rate, target_sr=PESQ_RATE)
        deg = librosa.resample(deg, orig_sr=sample_rate, target_sr=PESQ_RATE)
    if not np.any(ref) and not np.any(deg):
        raise ValueError("reference and degraded are both silent; PESQ needs speech")
    try:
        return float(pesq(PESQ_RATE, ref, deg, "wb"))
    except PesqError as err:
        raise ValueError(f"wideband PESQ failed on {ref.shape[0]} samples at {PESQ_RATE} Hz: "
                         f"{type(err).__name__} {err}") from err


def mel_l1(reference: Signal, degraded: Signal, sample_rate: int,
           mel_transform: nn.Module) -> float:
    """Mean ``|log-mel(reference) - log-mel(degraded)|`` with ``mel_transform`` (a log-mel).

    ``sample_rate`` must equal ``mel_transform.sample_rate``: a front end at another rate
    would compare the wrong bands.
    """
    check_int("sample_rate", sample_rate, 1)
    transform_rate = getattr(mel_transform, "sample_rate", None)
    if transform_rate != sample_rate:
        raise ValueError(f"sample_rate={sample_rate} does not match "
                         f"mel_transform.sample_rate={transform_rate}")
    ref, deg = _pair(reference, degraded)
    pair = torch.from_numpy(np.stack([ref, deg])).float()  # (2, L)
    buffers = list(mel_transform.buffers())
    pair = pair.to(buffers[0].device) if buffers else pair
    with torch.no_grad():
        mels = mel_transform(pair)  # (2, L) -> (2, num_mels, L // hop)
    return float((mels[0] - mels[1]).abs().mean())


def validation_metrics(reference: Signal, degraded: Signal, sample_rate: int,
                       mel_transform: nn.Module) -> dict[str, float]:
    """``{"mel_l1", "stoi", "pesq_wb"}`` of one utterance (see each function)."""
    return {
        "mel_l1": mel_l1(reference, degraded, sample_rate, mel_transform),
        "stoi": stoi(reference, degraded, sample_rate),
        "pesq_wb": wideband_pesq(reference, degraded, sample_rate),
    }


__all__ = ["as_signal", "mel_l1", "stoi", "validation_metrics", "wideband_pesq"]
