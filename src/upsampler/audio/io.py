"""Audio files: read as mono float32 at a sample rate, write atomically, read a header.

Names go to soundfile as the file system's bytes (:func:`sound_path`), so any name the
file system holds opens. ``BUNDLED_SPEECH`` is one CMU ARCTIC utterance shipped with the
package (``data/arctic_a0007.wav``, licence beside it) for examples and checks.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from torch import Tensor

from upsampler._atomic import PathLike, atomic_write
from upsampler.lengths import check_int

BUNDLED_SPEECH = Path(__file__).parents[1] / "data" / "arctic_a0007.wav"  # src/upsampler/data


def sound_path(path: PathLike) -> bytes:
    """``path`` as the file system's bytes, the form soundfile opens any name in.

    soundfile encodes a ``str`` path as strict UTF-8, so a name that is not valid UTF-8
    (``b"caf\\xe9.wav"``, which Python holds as ``"caf\\udce9.wav"``) fails with
    ``UnicodeEncodeError``; its bytes open it as they are.
    """
    return os.fsencode(path)


def load_audio(path: PathLike, sample_rate: int) -> Tensor:
    """Read ``path`` as float32 mono ``(L,)`` at ``sample_rate`` (channel mean, librosa resampling).

    Raises ``ValueError`` naming the path when it is missing, unreadable or empty.
    """
    check_int("sample_rate", sample_rate, 1)
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"audio file {str(path)!r} does not exist or is not a file")
    try:
        data, file_rate = sf.read(sound_path(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError) as err:
        raise ValueError(f"audio file {str(path)!r} is not readable audio: {err}") from err
    if data.size == 0:
        raise ValueError(f"audio file {str(path)!r} holds no samples")
    mono = data.mean(axis=1)  # (L, channels) -> (L,)
    if file_rate != sample_rate:
        import librosa  # imported on first use: ``import upsampler`` stays free of it

        mono = librosa.resample(mono, orig_sr=file_rate, target_sr=sample_rate)
    return torch.from_numpy(np.ascontiguousarray(mono, dtype=np.float32))


def save_audio(path: PathLike, wav: Tensor, sample_rate: int) -> None:
    """Write ``(L,)`` or ``(C, L)`` to ``path`` (format from its suffix): temp file, then rename."""
    check_int("sample_rate", sample_rate, 1)
    if not isinstance(wav, Tensor) or wav.dim() not in (1, 2) or wav.shape[-1] == 0:
        found = tuple(wav.shape) if isinstance(wav, Tensor) else type(wav).__name__
        raise ValueError(f"wav must be a non-empty (L,) or (C, L) tensor, got {found}")
    if not bool(torch.isfinite(wav).all()):
        raise ValueError("wav contains NaN or Inf values; it must be finite")
    data = wav.detach().float().cpu()
    data = data.t() if data.dim() == 2 else data  # (C, L) -> (L, C), soundfile's layout
    atomic_write(path, lambda temp: sf.write(sound_path(temp), data.numpy(), sample_rate))


def file_sample_rate(path: PathLike) -> int:
    """The sample rate an audio file's header states (``ValueError`` if unreadable)."""
    try:
        return int(sf.info(sound_path(path)).samplerate)
    except (sf.LibsndfileError, RuntimeError, TypeError) as err:
        raise ValueError(f"audio file {str(path)!r} is not readable audio: {err}") from err


__all__ = ["BUNDLED_SPEECH", "file_sample_rate", "load_audio", "save_audio", "sound_path"]
