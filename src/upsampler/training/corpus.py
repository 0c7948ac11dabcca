"""The Allison corpus: Asterisk's English prompts (one speaker, G.722, 16 kHz) for vocoders.

Debian's ``asterisk-core-sounds-en-g722`` holds the prompts as raw G.722 (``*.g722``, 64 kbit/s,
16 kHz), ``asterisk-core-sounds-en`` their transcripts (``core-sounds-en.txt.gz``, lines
``name: text``). :func:`prepare_corpus` decodes every prompt, trims its leading and trailing
silence, drops the ones that are not speech and writes::

    <output_dir>/wavs/<name>.wav      16 kHz PCM16 mono, <name> as in the package (digits/1)
    <output_dir>/training.txt         HiFi-GAN file lists: "<name>|<text>" per line
    <output_dir>/validation.txt
    <output_dir>/corpus.json          counts, durations, settings
    <output_dir>/README.txt, COPYING  the credit and licence (CC-BY-SA-3.0, Allison Smith)

A wav already on disk is kept (every file is written to a temporary name and renamed), so a
rerun only finishes what an interrupted one left; ``settings.json`` records the settings
(written before the first wav), and a folder with other settings, or a non-empty folder
without that record (a user's own corpus), is refused before anything is written. Recordings by Allison Smith, Copyright
2003-2010, licensed CC-BY-SA-3.0 (Digium's Asterisk core sounds).
"""

from __future__ import annotations

import gzip
import json
import logging
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import librosa
import numpy as np
import soundfile as sf
from tqdm import tqdm

from upsampler._atomic import atomic_write, atomic_write_text, write_json
from upsampler.training.debian import download_deb, unpack_deb

log = logging.getLogger(__name__)

INT16_SCALE = 32768.0  # int16 full scale, for librosa's float silence detector
TRIM_FRAME, TRIM_HOP = 512, 128  # 32 ms / 8 ms frames for the silence detector at 16 kHz
SILENCE_FOLDER = "silence"
AUDIO_PACKAGE, TEXT_PACKAGE = "asterisk-core-sounds-en-g722", "asterisk-core-sounds-en"
SOUNDS_IN_PACKAGE = "usr/share/asterisk/sounds/en_US_f_Allison"
TRANSCRIPTS_IN_PACKAGE = "usr/share/doc/asterisk-core-sounds-en/core-sounds-en.txt.gz"
COPYRIGHT_IN_PACKAGE = "usr/share/doc/asterisk-core-sounds-en-g722/copyright"
WAVS, TRAINING, VALIDATION, SUMMARY = "wavs", "training.txt", "validation.txt", "corpus.json"
SETTINGS = "settings.json"
G722_SAMPLE_RATES = (8000, 16000)  # what the G.722 decoder accepts
G722_BITRATES = (48000, 56000, 64000)
MIN_HOLDOUT_EVERY = 2  # 1 would hold out every long prompt and train on the short ones only
FOREIGN_PATHS_SHOWN = 5
CREDIT = (
    "Recordings by Allison Smith (http://www.theivrvoice.com), Copyright 2003-2010 Allison "
    "Smith, from Digium's Asterisk core sounds (Debian package asterisk-core-sounds-en-g722), "
    "licensed CC-BY-SA-3.0 (https://creativecommons.org/licenses/by-sa/3.0/). Decoded from "
    "G.722, silence trimmed and non-speech prompts dropped by upsampler's "
    "recipes/prepare_data.py; these derived files are under the same licence."
)


@dataclass(frozen=True)
class CorpusSettings:
    """What decides the wavs and the split; a rerun with other settings must use a new folder."""

    sample_rate: int = 16000
    bitrate: int = 64000
    trim_top_db: float = 40.0
    trim_margin_seconds: float = 0.05
    holdout_every: int = 10
    holdout_min_seconds: float = 1.5

    def __post_init__(self) -> None:
        if self.sample_rate not in G722_SAMPLE_RATES:
            raise ValueError(f"sample_rate must be one of {list(G722_SAMPLE_RATES)}, "
                             f"got {self.sample_rate!r}")
        if self.bitrate not in G722_BITRATES:
            raise ValueError(f"bitrate must be one of {list(G722_BITRATES)}, got {self.bitrate!r}")
        if isinstance(self.holdout_every, bool) or not isinstance(self.holdout_every, int) \
                or self.holdout_every < MIN_HOLDOUT_EVERY:
            raise ValueError(f"holdout_every must be an integer >= {MIN_HOLDOUT_EVERY}, "
                             f"got {self.holdout_every!r}")
        for name, minimum in (("trim_top_db", None), ("trim_margin_seconds", 0.0),
                              ("holdout_min_seconds", 0.0)):
            value = getattr(self, name)
            real = isinstance(value, (int, float)) and not isinstance(value, bool) \
                and math.isfinite(value)
            if not real or (value < minimum if minimum is not None else not value > 0):
                bound = f">= {minimum:g}" if minimum is not None else "> 0"
                raise ValueError(f"{name} must be a number {bound}, got {value!r}")


def read_transcripts(path: str | os.PathLike[str]) -> dict[str, str]:
    """``{name: text}`` from ``name: text`` lines (gzip or plain); ``;`` lines are comments.

    Raises ``ValueError`` naming the file and line for a line without ``:``.
    """
    source = Path(path)
    opener = gzip.open if source.suffix == ".gz" else open
    with opener(source, "rt", encoding="utf-8") as stream:
        lines = stream.read().splitlines()
    transcripts = {}
    for number, line in enumerate(lines, start=1):
        if not line.strip() or line.lstrip().startswith(";"):
            continue
        name, colon, text = line.partition(":")
        if not colon or not name.strip():
            raise ValueError(f"{str(source)!r} line {number}: expected 'name: text', got {line!r}")
        transcripts[name.strip()] = " ".join(text.split())
    return transcripts


def is_speech(name: str, text: str) -> bool:
    """False for the ``silence/`` prompts and for texts that are one ``[...]`` description.

    ``beep: [this is a simple beep tone]`` is not speech; ``letters/at: at [@]`` is.
    """
    if name.split("/", 1)[0] == SILENCE_FOLDER or not text:
        return False
    return not (text.startswith("[") and text.endswith("]") and text.count("[") == 1)


def decode_g722(raw: bytes, sample_rate: int = 16000, bitrate: int = 64000) -> np.ndarray:
    """Raw G.722 bytes -> int16 PCM ``(L,)`` with a fresh decoder (its state starts at zero)."""
    try:
        from G722 import G722
    except ImportError as err:
        raise ImportError('decoding G.722 needs the g722 package: pip install "upsampler[data]"'
                          ) from err
    return np.asarray(G722(sample_rate, bitrate).decode(raw), dtype=np.int16)


def trim_silence(pcm: np.ndarray, sample_rate: int, top_db: float,
                 margin_seconds: float) -> np.ndarray:
    """``pcm`` without the leading and trailing stretch ``top_db`` below its peak.

    ``margin_seconds`` of that stretch is kept on each side, so words keep their onsets and
    the vocoder still sees some quiet. All-quiet input gives an empty array.
    """
    if pcm.size == 0 or not np.any(pcm):
        return pcm[:0]
    _, (start, end) = librosa.effects.trim(pcm.astype(np.float32) / INT16_SCALE, top_db=top_db,
                                           frame_length=TRIM_FRAME, hop_length=TRIM_HOP)
    margin = round(margin_seconds * sample_rate)
    return pcm[max(start - margin, 0):min(end + margin, pcm.size)]


def write_pcm16(path: Path, pcm: np.ndarray, sample_rate: int) -> None:
    """Write int16 ``pcm`` as a PCM16 wav: a hidden temporary file beside ``path``, renamed."""
    atomic_write(path, lambda temp: sf.write(temp, pcm, sample_rate, format="WAV", subtype="PCM_16"))


def split_names(durations: Mapping[str, float], every: int,
                min_seconds: float) -> tuple[list[str], list[str]]:
    """``(training, held_out)``: every ``every``-th name (sorted) of at least ``min_seconds``.

    Among the sorted names that last ``min_seconds`` or more, positions ``every - 1``,
    ``2 * every - 1``, ... are held out; everything else (short prompts included) trains.
    """
    if every < MIN_HOLDOUT_EVERY:
        raise ValueError(f"holdout_every must be >= {MIN_HOLDOUT_EVERY}, got {every}")
    names = sorted(durations)
    long_enough = [name for name in names if durations[name] >= min_seconds]
    held_out = set(long_enough[every - 1::every])
    return [n for n in names if n not in held_out], [n for n in names if n in held_out]


def prompt_names(sounds_dir: Path) -> dict[str, Path]:
    """``{name: path}`` for every ``*.g722`` under ``sounds_dir`` (``digits/1`` and so on)."""
    files = sorted(sounds_dir.rglob("*.g722"))
    if not files:
        raise ValueError(f"sounds_dir {str(sounds_dir)!r} holds no .g722 file")
    return {path.relative_to(sounds_dir).with_suffix("").as_posix(): path for path in files}


def recorded_settings(output_dir: Path) -> dict[str, Any] | None:
    """The settings an earlier :func:`prepare_corpus` recorded in ``output_dir``, else None.

    None also for a ``settings.json`` that is not JSON or does not hold exactly the
    :class:`CorpusSettings` fields (another program's file).
    """
    try:
        previous = json.loads((output_dir / SETTINGS).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    fields = set(CorpusSettings.__dataclass_fields__)
    return previous if isinstance(previous, dict) and set(previous) == fields else None


def check_output_dir(output_dir: Path, settings: CorpusSettings) -> None:
    """Raise ``ValueError`` unless ``output_dir`` is missing, empty, or an earlier
    preparation's folder with the same ``settings`` (which a rerun resumes).

    A non-empty folder without a ``settings.json`` of this module is someone else's (a
    user's own corpus): it is refused naming what is in it, so its ``training.txt``,
    ``validation.txt``, ``README.txt`` and ``wavs/`` are never written over or added to.
    """
    if not output_dir.exists():
        return
    if not output_dir.is_dir():
        raise ValueError(f"output_dir {str(output_dir)!r} is not a folder")
    previous = recorded_settings(output_dir)
    if previous is None:
        present = sorted(output_dir.iterdir())
        if present:
            shown = ", ".join(repr(str(path)) for path in present[:FOREIGN_PATHS_SHOWN])
            more = len(present) - FOREIGN_PATHS_SHOWN
            shown += f" and {more} more" if more > 0 else ""
            raise ValueError(
                f"output_dir {str(output_dir)!r} holds files no earlier prepare_data run "
                f"recorded (no {SETTINGS} of its own): {shown}; choose a new or empty "
                f"output_dir"
            )
        return
    wanted = asdict(settings)
    if previous != wanted:
        raise ValueError(
            f"output_dir {str(output_dir)!r} was prepared with {previous}, not {wanted}; "
            f"choose another output_dir or delete that one"
        )


def _check_settings(output_dir: Path, settings: CorpusSettings) -> None:
    """Refuse a folder :func:`check_output_dir` refuses; record ``settings`` for the next run."""
    check_output_dir(output_dir, settings)
    output_dir.mkdir(parents=True, exist_ok=True)
    write_json(output_dir / SETTINGS, asdict(settings))


def _file_list(names: Sequence[str], transcripts: Mapping[str, str]) -> str:
    return "".join(f"{name}|{transcripts[name].replace('|', ' ')}\n" for name in names)


def fetch_allison(cache_dir: str | os.PathLike[str]) -> dict[str, Path]:
    """Download and unpack both packages under ``cache_dir`` (skipping what is there).

    Returns the paths :func:`prepare_corpus` reads: ``sounds_dir``, ``transcripts_path``
    and ``copying``. Raises ``upsampler.training.debian.PackageError`` (saying what to do
    by hand) where ``apt-get`` is missing or fails.
    """
    cache = Path(cache_dir)
    unpacked = {package: unpack_deb(download_deb(package, cache), cache / "unpacked" / package)
                for package in (AUDIO_PACKAGE, TEXT_PACKAGE)}
    return {"sounds_dir": unpacked[AUDIO_PACKAGE] / SOUNDS_IN_PACKAGE,
            "transcripts_path": unpacked[TEXT_PACKAGE] / TRANSCRIPTS_IN_PACKAGE,
            "copying": unpacked[AUDIO_PACKAGE] / COPYRIGHT_IN_PACKAGE}


def prepare_corpus(
    sounds_dir: str | os.PathLike[str],
    transcripts_path: str | os.PathLike[str],
    output_dir: str | os.PathLike[str],
    settings: CorpusSettings = CorpusSettings(),
    copying: str | os.PathLike[str] | None = None,
) -> dict[str, Any]:
    """Decode, trim, filter and split the prompts under ``sounds_dir``; return the summary.

    ``copying`` (the package's copyright file) is copied to ``<output_dir>/COPYING``. An
    ``output_dir`` :func:`check_output_dir` refuses raises ``ValueError`` before anything
    is written.
    """
    sounds, output = Path(sounds_dir), Path(output_dir)
    transcripts = read_transcripts(transcripts_path)
    prompts = prompt_names(sounds)
    untranscribed = sorted(set(prompts) - set(transcripts))
    if untranscribed:
        log.warning("%d prompts have no transcript and are left out: %s",
                    len(untranscribed), untranscribed)
    speech = {n: p for n, p in prompts.items() if n in transcripts and is_speech(n, transcripts[n])}
    dropped = sorted(set(prompts) - set(speech) - set(untranscribed))
    log.info("%d prompts, %d not speech (left out): %s", len(prompts), len(dropped), dropped)
    _check_settings(output, settings)
    durations, written, silent = {}, 0, []
    for name, source in tqdm(speech.items(), desc="decode G.722", unit="prompt"):
        target = output / WAVS / f"{name}.wav"
        if not target.is_file():
            pcm = trim_silence(decode_g722(source.read_bytes(), settings.sample_rate,
                                           settings.bitrate), settings.sample_rate,
                               settings.trim_top_db, settings.trim_margin_seconds)
            if pcm.size == 0:
                silent.append(name)
                continue
            write_pcm16(target, pcm, settings.sample_rate)
            written += 1
        durations[name] = sf.info(str(target)).frames / settings.sample_rate
    if silent:
        log.warning("%d prompts are silent after decoding (left out): %s", len(silent), silent)
    training, held_out = split_names(durations, settings.holdout_every,
                                     settings.holdout_min_seconds)
    atomic_write_text(output / TRAINING, _file_list(training, transcripts))
    atomic_write_text(output / VALIDATION, _file_list(held_out, transcripts))
    atomic_write_text(output / "README.txt", CREDIT + "\n")
    if copying is not None:
        atomic_write_text(output / "COPYING", Path(copying).read_text(encoding="utf-8"))
    summary = {
        "prompts": len(prompts), "not_speech": dropped, "silent": silent,
        "written": written, "kept": len(durations) - written,
        "training": {"utterances": len(training),
                     "seconds": round(sum(durations[n] for n in training), 2)},
        "validation": {"utterances": len(held_out),
                       "seconds": round(sum(durations[n] for n in held_out), 2)},
        "settings": asdict(settings), "credit": CREDIT,
    }
    write_json(output / SUMMARY, summary)
    log.info("wrote %d wavs, kept %d from an earlier run; training %d utterances / %.1f s, "
             "held out %d / %.1f s -> %s", written, summary["kept"], len(training),
             summary["training"]["seconds"], len(held_out), summary["validation"]["seconds"],
             output)
    return summary


__all__ = ["CREDIT", "CorpusSettings", "check_output_dir", "decode_g722", "fetch_allison",
           "is_speech", "recorded_settings",
           "prepare_corpus",
           "prompt_names", "read_transcripts", "split_names", "trim_silence", "write_pcm16"]
