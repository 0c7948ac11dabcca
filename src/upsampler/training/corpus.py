"""The Allison corpus: Asterisk's English prompts (one speaker, G.722, 16 kHz) for vocoders.

:func:`prepare_corpus` decodes every prompt of the Debian packages (:mod:`.allison`), trims its
leading and trailing silence, drops the ones that are not speech and writes::

    <output_dir>/wavs/<name>.wav      16 kHz PCM16 mono, <name> as in the package (digits/1)
    <output_dir>/training.txt         HiFi-GAN file lists: "<name>|<text>" per line
    <output_dir>/validation.txt
    <output_dir>/corpus.json          counts, durations, settings
    <output_dir>/README.txt, COPYING  the credit and licence (CC-BY-SA-3.0, Allison Smith)

A wav already on disk is kept (every file is written to a temporary name and renamed), so a
rerun only finishes what an interrupted one left; ``settings.json`` records the settings
(written before the first wav), and a folder with other settings, or a non-empty folder
without that record (a user's own corpus), is refused before anything is written
(:mod:`.corpus_settings`).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import librosa
import numpy as np
import soundfile as sf
from tqdm import tqdm

from upsampler._atomic import atomic_write, atomic_write_text, write_json
from upsampler.training.allison import (
    CREDIT,
    decode_g722,
    is_speech,
    prompt_names,
    read_transcripts,
)
from upsampler.training.corpus_settings import (
    MIN_HOLDOUT_EVERY,
    CorpusSettings,
    claim_output_dir,
)

log = logging.getLogger(__name__)

INT16_SCALE = 32768.0  # int16 full scale, for librosa's float silence detector
TRIM_FRAME, TRIM_HOP = 512, 128  # 32 ms / 8 ms frames for the silence detector at 16 kHz
WAVS, TRAINING, VALIDATION, SUMMARY = "wavs", "training.txt", "validation.txt", "corpus.json"


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


def _file_list(names: Sequence[str], transcripts: Mapping[str, str]) -> str:
    return "".join(f"{name}|{transcripts[name].replace('|', ' ')}\n" for name in names)


def prepare_corpus(
    sounds_dir: str | os.PathLike[str],
    transcripts_path: str | os.PathLike[str],
    output_dir: str | os.PathLike[str],
    settings: CorpusSettings = CorpusSettings(),
    copying: str | os.PathLike[str] | None = None,
) -> dict[str, Any]:
    """Decode, trim, filter and split the prompts under ``sounds_dir``; return the summary.

    ``copying`` (the package's copyright file) is copied to ``<output_dir>/COPYING``. An
    ``output_dir`` :func:`~upsampler.training.corpus_settings.check_output_dir` refuses raises
    ``ValueError`` before anything is written.
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
    claim_output_dir(output, settings)
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


__all__ = ["prepare_corpus", "split_names", "trim_silence", "write_pcm16"]
