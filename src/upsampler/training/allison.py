"""The Allison prompts as Debian ships them: two packages, raw G.722 audio, a transcript file.

Debian's ``asterisk-core-sounds-en-g722`` holds the prompts as raw G.722 (``*.g722``, 64 kbit/s,
16 kHz), ``asterisk-core-sounds-en`` their transcripts (``core-sounds-en.txt.gz``, lines
``name: text``). :func:`fetch_allison` downloads and unpacks both; :func:`prompt_names`,
:func:`read_transcripts` and :func:`decode_g722` read what they hold, and :func:`is_speech`
tells a spoken prompt from a described sound. Recordings by Allison Smith, Copyright
2003-2010, licensed CC-BY-SA-3.0 (:data:`CREDIT`).
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np

from upsampler.training.debian import download_deb, unpack_deb

SILENCE_FOLDER = "silence"
AUDIO_PACKAGE, TEXT_PACKAGE = "asterisk-core-sounds-en-g722", "asterisk-core-sounds-en"
SOUNDS_IN_PACKAGE = "usr/share/asterisk/sounds/en_US_f_Allison"
TRANSCRIPTS_IN_PACKAGE = "usr/share/doc/asterisk-core-sounds-en/core-sounds-en.txt.gz"
COPYRIGHT_IN_PACKAGE = "usr/share/doc/asterisk-core-sounds-en-g722/copyright"
G722_SAMPLE_RATES = (8000, 16000)  # what the G.722 decoder accepts
G722_BITRATES = (48000, 56000, 64000)
CREDIT = (
    "Recordings by Allison Smith (http://www.theivrvoice.com), Copyright 2003-2010 Allison "
    "Smith, from Digium's Asterisk core sounds (Debian package asterisk-core-sounds-en-g722), "
    "licensed CC-BY-SA-3.0 (https://creativecommons.org/licenses/by-sa/3.0/). Decoded from "
    "G.722, silence trimmed and non-speech prompts dropped by upsampler's "
    "recipes/prepare_data.py; these derived files are under the same licence."
)


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


def prompt_names(sounds_dir: Path) -> dict[str, Path]:
    """``{name: path}`` for every ``*.g722`` under ``sounds_dir`` (``digits/1`` and so on)."""
    files = sorted(sounds_dir.rglob("*.g722"))
    if not files:
        raise ValueError(f"sounds_dir {str(sounds_dir)!r} holds no .g722 file")
    return {path.relative_to(sounds_dir).with_suffix("").as_posix(): path for path in files}


def fetch_allison(cache_dir: str | os.PathLike[str]) -> dict[str, Path]:
    """Download and unpack both packages under ``cache_dir`` (skipping what is there).

    Returns the paths :func:`upsampler.training.corpus.prepare_corpus` reads:
    ``sounds_dir``, ``transcripts_path`` and ``copying``. Raises
    ``upsampler.training.debian.PackageError`` (saying what to do by hand) where ``apt-get``
    is missing or fails.
    """
    cache = Path(cache_dir)
    unpacked = {package: unpack_deb(download_deb(package, cache), cache / "unpacked" / package)
                for package in (AUDIO_PACKAGE, TEXT_PACKAGE)}
    return {"sounds_dir": unpacked[AUDIO_PACKAGE] / SOUNDS_IN_PACKAGE,
            "transcripts_path": unpacked[TEXT_PACKAGE] / TRANSCRIPTS_IN_PACKAGE,
            "copying": unpacked[AUDIO_PACKAGE] / COPYRIGHT_IN_PACKAGE}


__all__ = ["AUDIO_PACKAGE", "CREDIT", "G722_BITRATES", "G722_SAMPLE_RATES", "TEXT_PACKAGE",
           "decode_g722", "fetch_allison", "is_speech", "prompt_names", "read_transcripts"]
