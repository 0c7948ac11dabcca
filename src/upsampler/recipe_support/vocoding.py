"""One input of ``recipes/vocode.py``: read as a mel, vocoded into its wav, drawn as a figure.

A saved mel is checked as it is read (:func:`load_mel`); a waveform is resampled and turned
into a mel window by window (:func:`read_input`); the generator's output goes straight into
the wav, window by window (:func:`write_wav`); :func:`vocode_one` does all three and returns
the input's record. The run's set-up and its checks are in :mod:`.vocode_setup`.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
import torch
from matplotlib.figure import Figure
from omegaconf import DictConfig
from torch import Tensor, nn

from upsampler._atomic import atomic_write
from upsampler.analysis.figures import save_png
from upsampler.audio import (
    file_sample_rate,
    load_audio,
    log_mel_in_windows,
    sound_path,
    vocode_in_windows,
)
from upsampler.lengths import ceil_div
from upsampler.recipe_support.distributed import ProcessContext
from upsampler.recipe_support.errors import one_line, printable
from upsampler.recipe_support.records import MEL_SUFFIXES
from upsampler.recipe_support.vocode_setup import Job

log = logging.getLogger("vocode")  # vocode_setup gave it the filter for unprintable names

FIGURE_SIZE = (8.0, 5.0)  # inches: two mel panels, input over output


def load_mel(path: Path, num_mels: int) -> Tensor:
    """A saved mel ``(num_mels, T)`` (or ``(1, num_mels, T)``) as float32 ``(num_mels, T)``.

    A ``.npy`` in either byte order is read (big-endian values are converted); one that is
    not a numeric array (a pickle, another format, a truncated file) raises ``ValueError``.
    """
    if path.suffix.lower() == ".npy":
        expected = "expected np.save of a (num_mels, T) float array"
        try:
            with open(path, "rb") as stream:
                version = np.lib.format.read_magic(stream)
                header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                          else np.lib.format.read_array_header_2_0)(stream)
        except (ValueError, OSError, EOFError) as error:  # not numpy's advice on pickles
            raise ValueError(f"mel file {str(path)!r} is not a numeric .npy mel (no .npy "
                             f"header); {expected}") from error
        if header[2].hasobject:
            raise ValueError(f"mel file {str(path)!r} is not a numeric .npy mel (it holds "
                             f"Python objects); {expected}")
        try:
            array = np.load(path, allow_pickle=False)
        except (ValueError, OSError, EOFError) as error:
            raise ValueError(f"mel file {str(path)!r} is a damaged or truncated .npy "
                             f"({one_line(error)}); {expected}") from error
        if not array.dtype.isnative:
            array = array.astype(array.dtype.newbyteorder("="))
        mel = torch.from_numpy(array)
    else:
        mel = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(mel, Tensor):
        raise TypeError(f"mel file {str(path)!r} holds a {type(mel).__name__}, expected a tensor")
    if not mel.is_floating_point():  # complex, integer or boolean values are not a log-mel
        raise TypeError(
            f"mel in {str(path)!r} has dtype {mel.dtype}; expected real floating-point values"
        )
    if mel.dim() == 3 and mel.shape[0] == 1:
        mel = mel[0]  # (1, num_mels, T) -> (num_mels, T)
    if mel.dim() != 2 or mel.shape[0] != num_mels or mel.shape[1] == 0:
        raise ValueError(
            f"mel in {str(path)!r} has shape {tuple(mel.shape)}; expected (num_mels={num_mels}, T) "
            f"with T >= 1"
        )
    return mel.float()


def mel_figure(input_mel: Tensor, output_mel: Tensor, sample_rate: int, hop: int,
               title: str) -> Figure:
    """Two stacked log-mel images, input over output, on a shared time axis in seconds."""
    figure = Figure(figsize=FIGURE_SIZE, layout="constrained")
    axes = figure.subplots(2, 1, sharex=True)
    for ax, mel, label in zip(axes, (input_mel, output_mel), ("input", "output")):
        seconds = mel.shape[-1] * hop / sample_rate
        image = ax.imshow(mel.cpu().numpy(), origin="lower", aspect="auto",
                          extent=(0, seconds, 0, mel.shape[0]))
        ax.set_title(f"{label} log-mel")
        ax.set_ylabel("mel bin")
        figure.colorbar(image, ax=ax, label="log magnitude")
    axes[-1].set_xlabel("time (s)")
    figure.suptitle(title)
    return figure


def read_input(job: Job, mel_transform: nn.Module, num_mels: int, window_frames: int,
               device: torch.device) -> tuple[Tensor, int]:
    """The input's mel ``(num_mels, T)`` and the samples to write (``T * hop`` or ``L``).

    A waveform at another sample rate is resampled (a log line names both rates), padded
    with zeros to a multiple of the hop, and its mel computed window by window.
    """
    sample_rate, hop = int(mel_transform.sample_rate), int(mel_transform.hop_length)
    if job.source.suffix.lower() in MEL_SUFFIXES:
        mel = load_mel(job.source, num_mels).to(device)
        return mel, mel.shape[-1] * hop
    file_rate = file_sample_rate(job.source)
    if file_rate != sample_rate:
        log.info("resampling %s from %d Hz to %d Hz", job.source, file_rate, sample_rate)
    audio = load_audio(job.source, sample_rate).to(device)
    length = audio.shape[-1]
    n_fft = int(mel_transform.n_fft)
    shortest = (ceil_div(max(hop, (n_fft - hop) // 2 + 1), hop) - 1) * hop + 1
    if length < shortest:
        raise ValueError(
            f"wav has {length} samples at {sample_rate} Hz; the mel front end (n_fft={n_fft}, "
            f"hop_length={hop}) needs at least {shortest}"
        )
    padded = torch.nn.functional.pad(audio, (0, ceil_div(length, hop) * hop - length))
    return log_mel_in_windows(mel_transform, padded, window_frames), length


def write_wav(path: Path, generator: nn.Module, mel: Tensor, samples: int, sample_rate: int,
              window_frames: int) -> None:
    """Vocode ``mel`` window by window straight into ``path`` (16-bit PCM), ``samples`` long."""

    def write(temp: Path) -> None:
        written = 0
        with sf.SoundFile(sound_path(temp), "w", samplerate=sample_rate, channels=1) as stream:
            def emit(piece: Tensor) -> None:
                nonlocal written
                piece = piece[:samples - written].float().cpu()
                if not bool(torch.isfinite(piece).all()):
                    raise ValueError("the generator's output contains NaN or Inf values")
                stream.write(piece.numpy())
                written += piece.shape[-1]

            vocode_in_windows(generator, mel, window_frames, emit)

    atomic_write(path, write)


def vocode_one(job: Job, generator: nn.Module, mel_transform: nn.Module, cfg: DictConfig,
               ctx: ProcessContext, output_dir: Path, wrote: list[str]) -> dict[str, Any]:
    """Vocode one input, write its wav (and figure), return its record; ``wrote`` grows.

    An output too short for the mel front end gets no figure (``"figure": None``, a warning).
    """
    sample_rate, hop = int(mel_transform.sample_rate), int(mel_transform.hop_length)
    window = int(cfg.window_frames)
    with torch.inference_mode():
        mel, samples = read_input(job, mel_transform, int(generator.num_mels), window, ctx.device)
        started = time.perf_counter()  # the vocoder's time (and the wav's writing)
        write_wav(output_dir / job.name, generator, mel, samples, sample_rate, window)
        if ctx.device.type == "cuda":
            torch.cuda.synchronize(ctx.device)  # kernels run asynchronously: wait before timing
        compute_seconds = time.perf_counter() - started
        wrote.append(job.name)
        figure_name = None
        if cfg.figures:
            written, _ = sf.read(sound_path(output_dir / job.name), dtype="float32")
            try:  # a mel of a few frames vocodes fine but is too short for the front end
                output_mel = log_mel_in_windows(mel_transform, torch.from_numpy(written), window)
            except ValueError as error:
                log.warning("no figure for %s: %s", job.source, one_line(error))
            else:
                title = printable(f"{job.source.name} -> {job.name}")
                figure = mel_figure(mel, output_mel, sample_rate, hop, title)
                save_png(figure, output_dir / job.figure)
                figure_name = job.figure
                wrote.append(figure_name)
    seconds = samples / sample_rate
    return {
        "input": str(job.source), "output": job.name, "figure": figure_name,
        "frames": int(mel.shape[-1]), "samples": int(samples), "hop": hop,
        "sample_rate": sample_rate, "seconds": seconds, "compute_seconds": compute_seconds,
        "rtf": compute_seconds / seconds, "rank": ctx.rank,
    }


__all__ = ["load_mel", "mel_figure", "read_input", "vocode_one", "write_wav"]
