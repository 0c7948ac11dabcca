"""Vocode waveforms or mel spectrograms with a HiFi-GAN generator (Hydra recipe).

    python recipes/vocode.py                                   # bundled speech, untrained V1
    python recipes/vocode.py input=clips/ checkpoint=g_02500000 model_config=config.json
    python recipes/vocode.py input=mel.npy model=debug audio=16k_hop200
    torchrun --nproc-per-node=2 recipes/vocode.py input=clips/ hydra.run.dir=out/clips

Per input it writes ``<output_dir>/<name>.wav`` (exactly ``T * hop`` samples for a mel of
``T`` frames, exactly the input's length for a waveform), ``figures/<name>.png`` (input mel
vs the output's mel) and a record; rank 0 then writes ``summary.json``. Under ``torchrun``
the files are sharded over ranks; a rerun into the same folder skips finished files.
A bad file is logged as one line and listed under ``failures``; the others still run.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import hydra
import numpy as np
import torch
from hydra.utils import instantiate
from matplotlib.figure import Figure
from omegaconf import DictConfig
from torch import nn
from tqdm import tqdm

from upsampler.audio import BUNDLED_SPEECH, copy_synthesis, load_audio, save_audio
from upsampler.batch import (
    MEL_SUFFIXES,
    RecipeError,
    RunRecords,
    find_inputs,
    one_line,
    output_names,
    run_or_exit,
    save_png,
    shard,
    write_json,
)
from upsampler.distributed import ProcessContext, init_process_context
from upsampler.lengths import ceil_div
from upsampler.recipe_config import check_model_matches_audio, load_or_init_generator

log = logging.getLogger("vocode")

FIGURES_DIR = "figures"
FIGURE_SIZE = (8.0, 5.0)  # inches: two mel panels, input over output
UNTRAINED_WARNING = (
    "the generator has untrained (randomly initialised) weights, so the output is noise-like, "
    "not speech. For real audio pass a trained HiFi-GAN generator: python recipes/vocode.py "
    "input=<wav, folder or mel> checkpoint=<path/to/g_02500000> model_config=<path/to/config.json>"
)


def build_generator(cfg: DictConfig, device: torch.device) -> nn.Module:
    """The configured generator, from a checkpoint when given, weight norm removed, eval mode."""
    generator = load_or_init_generator(cfg, cfg.seed)  # every rank: the same untrained weights
    generator.remove_weight_norm()
    return generator.eval().to(device)


def load_mel(path: Path, num_mels: int) -> torch.Tensor:
    """A saved mel ``(num_mels, T)`` (or ``(1, num_mels, T)``) as float32 ``(num_mels, T)``."""
    if path.suffix.lower() == ".npy":
        mel = torch.from_numpy(np.load(path, allow_pickle=False))
    else:
        mel = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(mel, torch.Tensor):
        raise TypeError(f"mel file {str(path)!r} holds a {type(mel).__name__}, expected a tensor")
    if mel.dim() == 3 and mel.shape[0] == 1:
        mel = mel[0]  # (1, num_mels, T) -> (num_mels, T)
    if mel.dim() != 2 or mel.shape[0] != num_mels or mel.shape[1] == 0:
        raise ValueError(
            f"mel in {str(path)!r} has shape {tuple(mel.shape)}; expected (num_mels={num_mels}, T) "
            f"with T >= 1"
        )
    return mel.float()


def mel_figure(
    input_mel: torch.Tensor, output_mel: torch.Tensor, sample_rate: int, hop: int, title: str
) -> Figure:
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


def vocode_one(source: Path, name: str, generator: nn.Module, mel_transform: nn.Module,
               cfg: DictConfig, ctx: ProcessContext, output_dir: Path) -> dict[str, Any]:
    """Vocode one input file, write its wav (and figure), return its summary record.

    An output too short for the mel front end gets no figure (``"figure": None``, a warning).
    """
    sample_rate, hop = int(mel_transform.sample_rate), int(mel_transform.hop_length)
    is_mel = source.suffix.lower() in MEL_SUFFIXES
    with torch.inference_mode():
        if is_mel:
            input_mel = load_mel(source, int(generator.num_mels)).to(ctx.device)
            frames = input_mel.shape[-1]
            expected = frames * hop
        else:
            audio = load_audio(source, sample_rate).to(ctx.device)
            frames, expected = ceil_div(audio.shape[-1], hop), audio.shape[-1]
        started = time.perf_counter()  # the vocoder's time, without file reading
        if is_mel:
            # (num_mels, T) -> (1, num_mels, T) -> (1, 1, T * hop) -> (T * hop,)
            wav = generator(input_mel[None])[0, 0]
        else:
            wav = copy_synthesis(generator, mel_transform, audio)  # (L,) -> mel -> (L,)
        if ctx.device.type == "cuda":
            torch.cuda.synchronize(ctx.device)  # kernels run asynchronously: wait before timing
        compute_seconds = time.perf_counter() - started
        if wav.shape[-1] != expected:
            raise RuntimeError(f"generator returned {wav.shape[-1]} samples, expected {expected}")
        (output_dir / name).parent.mkdir(parents=True, exist_ok=True)
        save_audio(output_dir / name, wav.cpu(), sample_rate)
        figure_name = None
        if cfg.figures:
            try:  # a mel of a few frames vocodes fine but is too short for the front end
                mels = (input_mel if is_mel else mel_transform(audio), mel_transform(wav))
            except ValueError as error:
                log.warning("no figure for %s: %s", source, one_line(error))
            else:
                figure_name = f"{FIGURES_DIR}/{Path(name).with_suffix('.png').as_posix()}"
                title = f"{source.name} -> {name}"
                save_png(mel_figure(*mels, sample_rate, hop, title), output_dir / figure_name)
    seconds = expected / sample_rate
    return {
        "input": str(source), "output": name, "figure": figure_name, "frames": int(frames),
        "samples": int(expected), "hop": hop, "sample_rate": sample_rate, "seconds": seconds,
        "compute_seconds": compute_seconds, "rtf": compute_seconds / seconds, "rank": ctx.rank,
    }


def prepare(
    cfg: DictConfig, ctx: ProcessContext, output_dir: Path
) -> tuple[list[tuple[Path, str]], nn.Module, nn.Module]:
    """(input file, output name) pairs, the generator and the mel front end.

    Any problem raises ``RecipeError`` with a one-line message.
    """
    try:
        source = Path(cfg.input) if cfg.input is not None else BUNDLED_SPEECH
        inputs = find_inputs(source, exclude=output_dir)
        jobs = list(zip(inputs, output_names(inputs, source)))
        mel_transform = instantiate(cfg.audio).to(ctx.device)
        generator = build_generator(cfg, ctx.device)
        check_model_matches_audio(generator, mel_transform)
    except Exception as error:  # setup problems end the run with one line, not a traceback
        raise RecipeError(one_line(error)) from error
    if cfg.input is None:
        log.info("no input given: vocoding the bundled speech recording %s", source)
    if cfg.checkpoint is None:
        log.warning(UNTRAINED_WARNING)
    return jobs, generator, mel_transform


def run(cfg: DictConfig) -> dict[str, Any] | None:
    """Vocode every input of ``cfg``; return the summary on rank 0 (None on other ranks)."""
    try:
        ctx = init_process_context(cfg.device)
    except ValueError as error:  # a bad device is a setup problem: one line, not a traceback
        raise RecipeError(one_line(error)) from error
    try:
        if cfg.num_threads is not None:
            torch.set_num_threads(int(cfg.num_threads))
        output_dir = Path(ctx.broadcast(str(cfg.output_dir)))  # rank 0's run folder for all
        jobs, generator, mel_transform = prepare(cfg, ctx, output_dir)
        records = RunRecords(output_dir)
        mine = shard(jobs, ctx.rank, ctx.world_size)
        todo = [(source, name) for source, name in mine if not records.is_done(name)]
        log.info("rank %d/%d: %d files, %d already done, writing to %s",
                 ctx.rank, ctx.world_size, len(mine), len(mine) - len(todo), output_dir)
        bar = tqdm(todo, desc=f"vocode rank {ctx.rank}", unit="file", position=ctx.rank,
                   disable=not cfg.progress)
        for source, name in bar:
            try:
                record = vocode_one(source, name, generator, mel_transform, cfg, ctx, output_dir)
            except Exception as error:  # one bad file must not stop the batch
                message = one_line(error)
                log.error("failed %s: %s", source, message)
                records.mark_failed(name, str(source), message)
                continue
            records.mark_done(name, record)
        ctx.barrier()
        if not ctx.is_main:
            return None
        summary = summarise(cfg, ctx, records, [name for _, name in jobs], generator, mel_transform)
        write_json(output_dir / "summary.json", summary)
        log.info("%d done, %d failed; summary at %s", len(summary["files"]),
                 len(summary["failures"]), output_dir / "summary.json")
        return summary
    finally:
        ctx.close()


def summarise(cfg: DictConfig, ctx: ProcessContext, records: RunRecords, names: list[str],
              generator: nn.Module, mel_transform: nn.Module) -> dict[str, Any]:
    """Run-wide summary: settings, per-file records, failures and totals."""
    collected = records.summary(names)
    seconds = sum(record["seconds"] for record in collected["files"])
    compute = sum(record["compute_seconds"] for record in collected["files"])
    return {
        "sample_rate": int(mel_transform.sample_rate),
        "hop": int(mel_transform.hop_length),
        "upsample_rates": [int(rate) for rate in generator.upsample_rates],
        "checkpoint": cfg.checkpoint,
        "trained": cfg.checkpoint is not None,
        "world_size": ctx.world_size,
        "device": str(ctx.device),
        "total_seconds": seconds,
        "total_compute_seconds": compute,
        "rtf": compute / seconds if seconds else None,
        "rtf_definition": "compute_seconds / seconds of audio; below 1 is faster than real time",
        **collected,
    }


@hydra.main(config_path="../configs", config_name="vocode", version_base="1.3")
def main(cfg: DictConfig) -> None:
    """Command-line entry point: a setup problem exits with status 1 and one log line."""
    run_or_exit(run, cfg, log)


if __name__ == "__main__":
    main()
