"""The steps of ``recipes/vocode.py``: set-up checks, one file's vocoding, its figure."""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import soundfile as sf
import torch
from hydra.utils import instantiate
from matplotlib.figure import Figure
from omegaconf import DictConfig
from torch import Tensor, nn

from upsampler._atomic import atomic_write
from upsampler.analysis.figures import save_png
from upsampler.audio import (
    BUNDLED_SPEECH,
    file_sample_rate,
    load_audio,
    log_mel_in_windows,
    sound_path,
    vocode_in_windows,
)
from upsampler.lengths import ceil_div
from upsampler.recipe_support.build import (
    build_generator,
    check_model_matches_audio,
    settings_fingerprint,
)
from upsampler.recipe_support.distributed import ProcessContext
from upsampler.recipe_support.errors import (
    EXIT_FAILURE,
    PrintableLogFilter,
    RecipeError,
    one_line,
    printable,
    run_dir_override,
)
from upsampler.recipe_support.records import (
    MEL_SUFFIXES,
    RunRecords,
    find_inputs,
    is_run_folder,
    output_names,
)

log = logging.getLogger("vocode")
log.addFilter(PrintableLogFilter())  # input names need not be valid UTF-8

SUMMARY_NAME = "summary.json"
FIGURES_DIR = "figures"
FIGURE_SIZE = (8.0, 5.0)  # inches: two mel panels, input over output
UNTRAINED_WARNING = (
    "the generator has untrained (randomly initialised) weights, so the output is noise-like, "
    "not speech. For speech use the shipped demo vocoder (checkpoint=demo, the default) or a "
    "trained HiFi-GAN generator: python recipes/vocode.py input=<wav, folder or mel> "
    "checkpoint=<path/to/g_02500000> model_config=<path/to/config.json>"
)


class Job(NamedTuple):
    """One input file and its output name relative to the run folder."""

    source: Path
    name: str

    @property
    def figure(self) -> str:
        return f"{FIGURES_DIR}/{Path(self.name).with_suffix('.png').as_posix()}"


def prepare(
    cfg: DictConfig, ctx: ProcessContext, output_dir: Path
) -> tuple[list[Job], nn.Module, nn.Module, dict[str, Any]]:
    """The jobs, the generator, the mel front end and the settings fingerprint.

    Each folder of the input that is not searched (hidden, an earlier run, the run's own
    output) is logged with the reason. Any problem raises ``RecipeError`` with a one-line
    message.
    """
    try:
        source = Path(cfg.input) if cfg.input is not None else BUNDLED_SPEECH
        def on_skip(folder: Path, reason: str) -> None:
            if ctx.is_main:
                log.info("not searched for inputs: %s (%s)", folder, reason)

        inputs = find_inputs(source, exclude=output_dir, on_skip=on_skip)
        jobs = [Job(*pair) for pair in zip(inputs, output_names(inputs, source))]
        mel_transform = instantiate(cfg.audio).to(ctx.device)
        generator = build_generator(cfg, device=ctx.device)  # every rank: the same weights
        check_model_matches_audio(generator, mel_transform)
        settings = settings_fingerprint(cfg, generator, mel_transform)
    except Exception as error:  # setup problems end the run with one line, not a traceback
        raise RecipeError(one_line(error)) from error
    if cfg.input is None:
        log.info("no input given: vocoding the bundled speech recording %s", source)
    if cfg.checkpoint is None:
        log.warning(UNTRAINED_WARNING)
    return jobs, generator, mel_transform, settings


def refuse_foreign_outputs(records: RunRecords, jobs: list[Job]) -> None:
    """Raise ``RecipeError`` if an output would be an input or a file no record lists."""
    inputs = {job.source.resolve(): job.source for job in jobs}
    owned = records.owned()
    for job in jobs:
        for name in (job.name, job.figure):
            target = records.output_dir / name
            if target.resolve() in inputs:
                raise RecipeError(
                    f"output {str(target)!r} would overwrite input "
                    f"{str(inputs[target.resolve()])!r}; choose a hydra.run.dir (or output_dir) "
                    f"outside the input's folder"
                )
            if target.exists() and name not in owned:
                raise RecipeError(
                    f"output {str(target)!r} for input {str(job.source)!r} already exists and "
                    f"was not written by a run into {str(records.output_dir)!r}; choose another "
                    f"hydra.run.dir (or output_dir)"
                )


def run_dir_in_input_problem(argv: list[str]) -> str | None:
    """Why ``hydra.run.dir`` on the command line must not be used with its ``input=``, or None.

    Refused: the input folder itself, and an existing, non-empty folder inside it that is
    not an earlier run (no ``records/`` or ``.hydra/``). Hydra writes ``.hydra/`` and a log
    there before the recipe runs, and an input search skips any folder holding ``.hydra/``,
    so the user's files in it would silently drop out of every later run. A new folder
    inside the input (``input=clips hydra.run.dir=clips/vocoded``) is fine: the search
    leaves the run's own folder out.
    """
    run_dir = run_dir_override(argv)
    inputs = [arg.partition("=")[2] for arg in argv[1:] if arg.partition("=")[0] == "input"]
    if run_dir is None or not inputs or not inputs[-1] or "$" in inputs[-1]:
        return None
    root = Path(inputs[-1]).expanduser()
    if not root.is_dir():
        return None
    run, root = Path(run_dir).expanduser().resolve(), root.resolve()
    if run == root:
        return (f"hydra.run.dir={run_dir!r} is the input folder input={inputs[-1]!r}; choose a "
                f"new folder (the outputs would be mixed with the inputs)")
    if root in run.parents and run.is_dir() and not is_run_folder(run) and any(run.iterdir()):
        return (f"hydra.run.dir={run_dir!r} is an existing folder of input={inputs[-1]!r} that "
                f"no earlier run wrote; Hydra would write .hydra/ into it and later runs would "
                f"skip its files as an earlier run's; choose a new folder")
    return None


def refuse_run_dir_in_input(argv: list[str]) -> None:
    """Exit with status 1 and one line on stderr when :func:`run_dir_in_input_problem`
    finds one; call it before Hydra starts (it writes into the run folder at once)."""
    problem = run_dir_in_input_problem(argv)
    if problem is not None:
        print(problem, file=sys.stderr)
        sys.exit(EXIT_FAILURE)


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


__all__ = ["Job", "SUMMARY_NAME", "prepare", "refuse_foreign_outputs", "refuse_run_dir_in_input",
           "run_dir_in_input_problem", "vocode_one"]
