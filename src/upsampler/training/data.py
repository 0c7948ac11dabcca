"""Vocoder training data: random waveform segments with their mels, whole utterances for validation.

Any corpus works, given either a folder of wavs (:func:`find_wavs`) or HiFi-GAN's file lists
(:func:`read_file_list`: ``training.txt`` / ``validation.txt`` lines ``name|text`` naming
``<wav_dir>/<name>.wav``, LJSpeech's layout). Every file is decoded once, when the dataset is
built, with the package's loader (mono float32, resampled with librosa to the mel front end's
rate, one log line per foreign rate) and kept in memory (4 bytes a sample: about 90 MB for
the 23 minutes of the Allison corpus), so an unreadable file stops the run before the first step, naming it.

A training item is one segment per file per epoch, HiFi-GAN's scheme::

    file   |<------------------- L samples ------------------->|
    offset ~ uniform{0 .. L - segment_length}, drawn from (seed, epoch, index)
    item              |<-- segment_length -->|    wav (1, segment_length)
                      [mel: segment_length // hop frames]    (num_mels, segment_length // hop)

The offset depends on ``(seed, epoch, index)`` only, not on worker processes, batch order
or earlier draws, so a resumed run sees exactly the segments an uninterrupted one would.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from torch import Tensor, nn
from torch.utils.data import Dataset

from upsampler.audio import load_audio
from upsampler.lengths import check_int

log = logging.getLogger(__name__)

WAV_SUFFIX = ".wav"
LIST_SEPARATOR = "|"
WAV_FOLDER = "wavs"  # where HiFi-GAN's layout keeps the files a list names
SHORT_FILE_MODES = ("pad", "skip")
LISTED_NAMES = 5  # file names a warning spells out before "and N more"


class ShortFileWarning(UserWarning):
    """Some files are shorter than a training segment (padded or skipped) or than one mel frame."""


def find_wavs(root: str | os.PathLike[str]) -> list[Path]:
    """Every ``.wav`` under ``root``, recursively, sorted; hidden files and folders are skipped.

    Raises ``ValueError`` naming ``root`` when it is missing, not a folder, or holds no wav.
    """
    folder = Path(root).expanduser()
    if not folder.is_dir():
        raise ValueError(f"wav folder {str(folder)!r} does not exist or is not a folder")
    found = sorted(
        path for path in folder.rglob("*")
        if path.suffix.lower() == WAV_SUFFIX and path.is_file()
        and not any(part.startswith(".") for part in path.relative_to(folder).parts)
    )
    if not found:
        raise ValueError(f"wav folder {str(folder)!r} holds no {WAV_SUFFIX} file")
    return found


def read_file_list(
    list_path: str | os.PathLike[str], wav_dir: str | os.PathLike[str], extension: str = ".wav"
) -> list[Path]:
    """The files a HiFi-GAN / LJSpeech list names: ``<wav_dir>/<name><extension>`` per line.

    Each non-blank line is ``name|text`` (more ``|`` fields, as LJSpeech's ``metadata.csv``,
    or none are fine: only the name is used); a UTF-8 byte order mark at the start is
    skipped. Raises ``ValueError`` for a missing or empty
    list, a repeated name, or listed files that do not exist (naming them).
    """
    listing, folder = Path(list_path).expanduser(), Path(wav_dir).expanduser()
    if not listing.is_file():
        raise ValueError(f"file list {str(listing)!r} does not exist or is not a file")
    text = listing.read_text(encoding="utf-8-sig")  # a leading BOM is no part of a name
    names = [line.split(LIST_SEPARATOR, 1)[0].strip()
             for line in text.splitlines() if line.strip()]
    if not names:
        raise ValueError(f"file list {str(listing)!r} names no file")
    repeated = sorted(name for name, count in Counter(names).items() if count > 1)
    if repeated:
        raise ValueError(f"file list {str(listing)!r} names {_listing(repeated)} more than once")
    files = [folder / f"{name}{extension}" for name in names]
    missing = [str(path) for path in files if not path.is_file()]
    if missing:
        raise ValueError(
            f"file list {str(listing)!r}: {len(missing)} of {len(files)} files are missing "
            f"under wav_dir={str(folder)!r}: {_listing(missing)}"
        )
    return files


def default_wav_dir(list_path: str | os.PathLike[str]) -> Path:
    """HiFi-GAN's layout: ``wavs/`` beside the list when it exists, else the list's folder."""
    folder = Path(list_path).expanduser().parent
    beside = folder / WAV_FOLDER
    return beside if beside.is_dir() else folder


def _listing(items: Sequence[str]) -> str:
    shown = ", ".join(repr(item) for item in items[:LISTED_NAMES])
    more = len(items) - LISTED_NAMES
    return f"{shown} and {more} more" if more > 0 else shown


def _check_mel_transform(mel_transform: nn.Module) -> tuple[int, int]:
    rate = getattr(mel_transform, "sample_rate", None)
    hop = getattr(mel_transform, "hop_length", None)
    if not (isinstance(mel_transform, nn.Module) and isinstance(rate, int)
            and isinstance(hop, int)):
        raise TypeError(
            "mel_transform must be an nn.Module with int sample_rate and hop_length "
            f"(upsampler.audio.MelSpectrogram), got {type(mel_transform).__name__}"
        )
    return rate, hop


def _shortest_wav(mel_transform: nn.Module, hop: int) -> int:
    """Fewest samples the front end takes: one hop, and more than its reflect pad."""
    pad = (int(getattr(mel_transform, "n_fft", hop)) - hop) // 2  # HiFi-GAN's reflect padding
    return max(hop, pad + 1)


def load_wavs(files: Sequence[Path], sample_rate: int) -> list[Tensor]:
    """Decode ``files`` to mono float32 ``(L,)`` at ``sample_rate`` with the package's loader.

    A file at another rate is resampled (one INFO line per foreign rate names both rates and
    a file). Raises ``ValueError`` naming the file when one is missing, unreadable, empty or
    holds NaN / Inf.
    """
    if len(files) == 0:
        raise ValueError("files must name at least one audio file, got none")
    foreign: Counter[int] = Counter()
    wavs = []
    for path in files:
        try:
            file_rate = sf.info(str(path)).samplerate
        except (sf.LibsndfileError, RuntimeError, TypeError) as err:
            raise ValueError(f"audio file {str(path)!r} is not readable audio: {err}") from err
        if file_rate != sample_rate:
            if not foreign[file_rate]:
                log.info("resampling files at %d Hz to the mel front end's %d Hz (first: %s)",
                         file_rate, sample_rate, path)
            foreign[file_rate] += 1
        wav = load_audio(path, sample_rate)
        if not bool(torch.isfinite(wav).all()):
            raise ValueError(f"audio file {str(path)!r} holds NaN or Inf samples")
        wavs.append(wav)
    for file_rate, count in sorted(foreign.items()):
        log.info("resampled %d of %d files from %d Hz to %d Hz", count, len(files), file_rate,
                 sample_rate)
    return wavs


def utterance_names(files: Sequence[Path]) -> list[str]:
    """Each file's path under the files' common folder, without suffix (``digits/1``)."""
    paths = [Path(path).resolve() for path in files]
    base = Path(os.path.commonpath([path.parent for path in paths]))
    return [path.relative_to(base).with_suffix("").as_posix() for path in paths]


def _warn_short(files: Sequence[Path], short: Sequence[int], what: str) -> None:
    if short:
        names = [str(files[index]) for index in short]
        warnings.warn(f"{len(short)} of {len(files)} files {what}: {_listing(names)}",
                      ShortFileWarning, stacklevel=3)


class SegmentDataset(Dataset):
    """Random ``segment_length``-sample crops of ``files`` and their mels, one per file per epoch.

    ``__getitem__(i)`` returns ``(mel, wav)``: ``mel`` ``(num_mels, segment_length // hop)``
    is ``mel_transform(wav[0])``, ``wav`` ``(1, segment_length)``, both float32. Files shorter
    than a segment are zero-padded at the end (``short_files="pad"``) or left out
    (``"skip"``), with a :class:`ShortFileWarning` naming them either way.
    """

    def __init__(
        self,
        files: Sequence[Path],
        mel_transform: nn.Module,
        segment_length: int,
        seed: int = 0,
        short_files: str = "pad",
    ) -> None:
        sample_rate, hop = _check_mel_transform(mel_transform)
        check_int("segment_length", segment_length, 1)
        if segment_length % hop:
            raise ValueError(
                f"segment_length must be a positive multiple of the mel hop_length={hop}, "
                f"got {segment_length}"
            )
        shortest = _shortest_wav(mel_transform, hop)
        if segment_length < shortest:
            raise ValueError(
                f"segment_length must be at least {shortest} samples for the mel front end "
                f"(hop_length={hop}, n_fft={getattr(mel_transform, 'n_fft', hop)}), "
                f"got {segment_length}"
            )
        check_int("seed", seed, 0)
        if short_files not in SHORT_FILE_MODES:
            raise ValueError(f"short_files must be one of {SHORT_FILE_MODES}, got {short_files!r}")
        files = [Path(path) for path in files]
        wavs = load_wavs(files, sample_rate)
        short = [index for index, wav in enumerate(wavs) if wav.shape[0] < segment_length]
        seconds = segment_length / sample_rate
        if short_files == "skip":
            _warn_short(files, short, f"are shorter than segment_length={segment_length} "
                                      f"samples ({seconds:.3f} s) and are skipped")
            kept = sorted(set(range(len(files))) - set(short))
            if not kept:
                raise ValueError(f"every file is shorter than segment_length={segment_length} "
                                 f"samples; lower it or use short_files='pad'")
            files, wavs = [files[i] for i in kept], [wavs[i] for i in kept]
        else:
            _warn_short(files, short, f"are shorter than segment_length={segment_length} "
                                      f"samples ({seconds:.3f} s) and are zero-padded")
        self.files, self.wavs = files, wavs
        self.mel_transform, self.hop_length = mel_transform, hop
        self.segment_length = segment_length
        self.seed, self.epoch = seed, 0

    def __len__(self) -> int:
        return len(self.wavs)

    def set_epoch(self, epoch: int) -> None:
        """Draw this epoch's offsets: item ``i`` depends on ``(seed, epoch, i)`` only.

        Call it before ``iter(loader)``: DataLoader worker processes copy the dataset when
        the iterator starts, so ``persistent_workers=True`` would keep the first epoch's value.
        """
        self.epoch = check_int("epoch", epoch, 0)

    def segment_start(self, index: int) -> int:
        """The first sample of item ``index``'s segment in its file this epoch (0 when padded)."""
        longest_start = self.wavs[index].shape[0] - self.segment_length
        if longest_start <= 0:
            return 0
        rng = np.random.default_rng((self.seed, self.epoch, index))
        return int(rng.integers(0, longest_start + 1))

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        """``(mel (num_mels, segment_length // hop), wav (1, segment_length))``, float32."""
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} is out of range for {len(self)} items")
        index %= len(self)
        start = self.segment_start(index)
        segment = self.wavs[index][start:start + self.segment_length]
        segment = torch.nn.functional.pad(segment, (0, self.segment_length - segment.shape[0]))
        with torch.no_grad():
            mel = self.mel_transform(segment)  # (segment_length,) -> (num_mels, frames)
        return mel, segment.unsqueeze(0)  # (segment_length,) -> (1, segment_length)


class UtteranceDataset(Dataset):
    """Whole utterances for validation, each cut to a multiple of the hop.

    ``__getitem__(i)`` returns ``(name, mel, wav)``: ``name`` the file's path under the files'
    common folder without suffix, ``mel`` ``(num_mels, T)``, ``wav`` ``(1, T * hop)`` with
    ``T = L // hop`` (the last ``L % hop`` samples dropped). Files too short for one mel
    frame (or than the front end's reflect padding) are left out with a
    :class:`ShortFileWarning`.
    """

    def __init__(self, files: Sequence[Path], mel_transform: nn.Module) -> None:
        sample_rate, hop = _check_mel_transform(mel_transform)
        files = [Path(path) for path in files]
        names = utterance_names(files) if files else []
        wavs = load_wavs(files, sample_rate)
        shortest = _shortest_wav(mel_transform, hop)
        short = [index for index, wav in enumerate(wavs)
                 if (wav.shape[0] // hop) * hop < shortest]
        _warn_short(files, short, f"hold fewer than the {shortest} samples the mel front end "
                                  f"needs (after cutting to a multiple of hop={hop}) and "
                                  f"are left out")
        kept = sorted(set(range(len(files))) - set(short))
        if not kept:
            raise ValueError(f"every file holds fewer than the {shortest} samples the mel front "
                             f"end needs")
        self.files = [files[i] for i in kept]
        self.names = [names[i] for i in kept]
        self.wavs = [wavs[i][: (wavs[i].shape[0] // hop) * hop] for i in kept]
        self.mel_transform, self.hop_length = mel_transform, hop

    def __len__(self) -> int:
        return len(self.wavs)

    def __getitem__(self, index: int) -> tuple[str, Tensor, Tensor]:
        """``(name, mel (num_mels, T), wav (1, T * hop))``, float32."""
        wav = self.wavs[index]
        with torch.no_grad():
            mel = self.mel_transform(wav)  # (T * hop,) -> (num_mels, T)
        return self.names[index], mel, wav.unsqueeze(0)  # (T * hop,) -> (1, T * hop)


__all__ = [
    "SHORT_FILE_MODES", "SegmentDataset", "ShortFileWarning", "UtteranceDataset",
    "WAV_FOLDER", "default_wav_dir", "find_wavs", "load_wavs", "read_file_list", "utterance_names",
]
