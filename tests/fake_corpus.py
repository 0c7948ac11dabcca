"""Fabricated corpus inputs for the tests: G.722 prompts, a transcript, hand-built .deb files."""

from __future__ import annotations

import gzip
import io
import tarfile
from pathlib import Path

import numpy as np
import pytest

from upsampler.training import allison, debian

RATE = 16000


def tone(seconds: float, frequency: float = 440.0, amplitude: float = 8000.0) -> np.ndarray:
    t = np.arange(round(seconds * RATE)) / RATE
    return (amplitude * np.sin(2 * np.pi * frequency * t)).astype(np.int16)


def encode(pcm: np.ndarray) -> bytes:
    g722 = pytest.importorskip("G722", reason='needs g722: pip install "upsampler[data]"')
    return bytes(g722.G722(RATE, 64000).encode(pcm))


def prompt(speech_seconds: float) -> bytes:
    """A quarter second of silence, a tone standing in for speech, a quarter second of silence."""
    quiet = np.zeros(RATE // 4, dtype=np.int16)
    return encode(np.concatenate([quiet, tone(speech_seconds), quiet]))


def make_sounds(root: Path) -> Path:
    """A fake sounds tree and transcript: speech in folders with repeated file names."""
    sounds = root / "sounds"
    lengths = {"hello": 2.0, "goodbye": 1.6, "digits/1": 0.4, "letters/1": 0.3, "vm-intro": 2.5,
               "beep": 0.3, "silence/1": 0.0}
    for name, seconds in lengths.items():
        (sounds / f"{name}.g722").parent.mkdir(parents=True, exist_ok=True)
        raw = encode(np.zeros(RATE, dtype=np.int16)) if seconds == 0 else prompt(seconds)
        (sounds / f"{name}.g722").write_bytes(raw)
    (root / "core-sounds-en.txt").write_text(
        "hello: Hello.\ngoodbye: Goodbye.\ndigits/1: one\nletters/1: one (letter)\n"
        "vm-intro: Please leave a message.\nbeep: [beep tone]\nsilence/1: (1 second of silence)\n")
    return sounds


def ar_member(name: str, data: bytes) -> bytes:
    header = f"{name + '/':<16}{0:<12}{0:<6}{0:<6}{100644:<8}{len(data):<10}`\n".encode()
    return header + data + (b"\n" if len(data) % 2 else b"")


def tar_xz(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:xz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(f"./{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def make_deb(path: Path, files: dict[str, bytes]) -> Path:
    """A minimal .deb: an ar archive of debian-binary, control.tar.xz and data.tar.xz."""
    control = tar_xz({"control": b"Package: fake\nVersion: 1.0\nArchitecture: all\n"})
    path.write_bytes(debian.AR_MAGIC + ar_member("debian-binary", b"2.0\n")
                     + ar_member("control.tar.xz", control)
                     + ar_member("data.tar.xz", tar_xz(files)))
    return path


def make_allison_debs(root: Path, cache_dir: Path) -> None:
    """The two Asterisk packages, faked with :func:`make_sounds`, as .deb files in ``cache_dir``."""
    sounds = make_sounds(root)
    audio = {f"{allison.SOUNDS_IN_PACKAGE}/{path.relative_to(sounds).as_posix()}": path.read_bytes()
             for path in sounds.rglob("*.g722")}
    audio[allison.COPYRIGHT_IN_PACKAGE] = b"Copyright: 2003-2010, Allison Smith\nCC-BY-SA-3.0\n"
    transcripts = gzip.compress((root / "core-sounds-en.txt").read_bytes())
    cache_dir.mkdir(parents=True, exist_ok=True)
    make_deb(cache_dir / f"{allison.AUDIO_PACKAGE}_1.6.1-1_all.deb", audio)
    make_deb(cache_dir / f"{allison.TEXT_PACKAGE}_1.6.1-1_all.deb",
             {allison.TRANSCRIPTS_IN_PACKAGE: transcripts})
