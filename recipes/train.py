"""Train a HiFi-GAN generator built on the package's layers (Hydra recipe).

    python recipes/train.py data.train_list=LJSpeech-1.1/training.txt \\
        data.validation_list=LJSpeech-1.1/validation.txt data.wav_dir=LJSpeech-1.1/wavs \\
        audio=22k_hop256 model=hifigan_v1 hydra.run.dir=runs/v1
    python recipes/train.py ... resume=true hydra.run.dir=runs/v1     # continue the last pair
    python recipes/train.py experiment=demo data.train_list=...       # small CPU configuration
    torchrun --nproc-per-node=2 recipes/train.py ... hydra.run.dir=runs/v1

The run folder gets ``g_XXXXXXXX`` / ``do_XXXXXXXX`` checkpoint pairs in HiFi-GAN's format,
``config.json`` (``recipes/vocode.py checkpoint=<g> model_config=<config.json>`` reads it),
``metrics.jsonl`` and, with the ``tensorboard`` extra, ``tensorboard/``. Only rank 0 writes.
A setup problem, a non-finite loss or an unusable checkpoint ends the run with one log line
and exit status 1; the last complete checkpoint pair stays in place.
"""

from __future__ import annotations

import logging
import os
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hydra
import torch
from hydra.utils import instantiate
from matplotlib.figure import Figure
from omegaconf import DictConfig, OmegaConf
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from upsampler.audio import MelSpectrogram
from upsampler.recipe_support.errors import RecipeError, one_line, run_or_exit
from upsampler.files import write_json
from upsampler.recipe_support.distributed import ProcessContext, init_process_context
from upsampler.recipe_support.build import check_model_matches_audio, generator_fields
from upsampler.training import data as training_data
from upsampler.training.artifacts import tonal_excess
from upsampler.training.checkpoints import (
    generator_state_dict,
    hifigan_config,
    latest_checkpoint,
    load_generator_state,
    read_pair,
    save_pair,
    unwrap,
)
from upsampler.training.discriminators import MultiPeriodDiscriminator, MultiScaleDiscriminator
from upsampler.training.losses import MultiResolutionSTFTLoss
from upsampler.training.loop import LossWeights, NonFiniteLossError, Trainer
from upsampler.training.monitor import RunLog
from upsampler.training.sampling import ResumableSampler
from upsampler.training.validation import validate

log = logging.getLogger("train")
SECONDS_PER_MINUTE = 60.0
CUBLAS_DETERMINISTIC = ":4096:8"  # cuBLAS workspace setting deterministic algorithms need
WAV_FOLDER = "wavs"  # where HiFi-GAN's layout keeps the files a list names
UNTIL_THE_CLOCK = sys.maxsize  # warm-up step count while warmup_minutes decides
EXAMPLE_FIGURE_SIZE = (8.0, 5.0)  # inches: reference over generated mel


@dataclass
class Position:
    """Where the run stands in its data and its time budget (saved in every ``do_*``)."""

    epoch: int = 0
    batch_in_epoch: int = 0
    seconds: float = 0.0


def configure(cfg: DictConfig) -> None:
    """Threads, seeds and (optionally) deterministic algorithms, before any model exists."""
    if cfg.num_threads is not None:
        torch.set_num_threads(int(cfg.num_threads))
    if cfg.deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_DETERMINISTIC)
        torch.use_deterministic_algorithms(True, warn_only=True)
    random.seed(cfg.seed)
    torch.manual_seed(cfg.seed)


def default_wav_dir(list_path: Path) -> Path:
    """HiFi-GAN's layout: ``wavs/`` beside the list when it exists, else the list's folder."""
    beside = list_path.expanduser().parent / WAV_FOLDER
    return beside if beside.is_dir() else list_path.expanduser().parent


def build_datasets(cfg: DictConfig, mel_transform: nn.Module) -> tuple[Dataset, Dataset | None]:
    """Training segments and held-out utterances (None without ``data.validation_list``)."""
    data = cfg.data

    def files(list_path: str | None) -> list[Path]:
        if list_path is None:
            if data.wav_dir is None:
                raise ValueError("set data.train_list (HiFi-GAN's training.txt) or data.wav_dir "
                                 "(a folder of wavs); both are null")
            return training_data.find_wavs(Path(data.wav_dir).expanduser())
        wav_dir = data.wav_dir if data.wav_dir is not None else default_wav_dir(Path(list_path))
        return training_data.read_file_list(Path(list_path).expanduser(),
                                            Path(wav_dir).expanduser())

    train_set = training_data.SegmentDataset(files(data.train_list), mel_transform,
                                             int(data.segment_length), seed=int(cfg.seed),
                                             short_files=str(data.short_files))
    if data.validation_list is None:
        log.warning("data.validation_list is null: no held-out validation, losses only")
        return train_set, None
    held_out = files(data.validation_list)[: data.validation_utterances]
    return train_set, training_data.UtteranceDataset(held_out, mel_transform)


def warmup_steps(cfg: DictConfig) -> int:
    """``cfg.warmup_steps``; with ``warmup_minutes`` set, no step count ends the warm-up."""
    return UNTIL_THE_CLOCK if cfg.warmup_minutes is not None else int(cfg.warmup_steps)


def build(cfg: DictConfig, ctx: ProcessContext) -> tuple[Trainer, MelSpectrogram, Dataset,
                                                          Dataset | None]:
    """Models (same initial weights on every rank), trainer and datasets; one-line errors."""
    try:
        mel_transform = instantiate(cfg.audio)
        generator = instantiate(cfg.model)
        check_model_matches_audio(generator, mel_transform)
        disc = cfg.discriminator
        mpd = MultiPeriodDiscriminator(list(disc.periods), list(disc.period_channels))
        msd = MultiScaleDiscriminator(list(disc.scale_channels), list(disc.scale_groups))
        loss_mel = MelSpectrogram(mel_transform.sample_rate, mel_transform.n_fft,
                                  mel_transform.hop_length, mel_transform.win_length,
                                  mel_transform.num_mels, mel_transform.fmin, fmax=None)
        opt = cfg.optimiser
        weights = LossWeights(cfg.loss.mel_weight, cfg.loss.stft_weight,
                              cfg.loss.adversarial_weight)
        shortest = MultiResolutionSTFTLoss().shortest
        if int(cfg.data.segment_length) < shortest:
            raise ValueError(f"data.segment_length must be at least {shortest} samples for the "
                             f"STFT loss, got {cfg.data.segment_length}")
        for module in (generator, mpd, msd):
            module.to(ctx.device)
        trainer = Trainer(generator, mpd, msd, loss_mel, float(opt.learning_rate),
                          tuple(opt.betas), float(opt.lr_decay), float(opt.weight_decay),
                          warmup_steps(cfg), weights).to(ctx.device)
        train_set, validation_set = build_datasets(cfg, mel_transform)
    except Exception as error:  # setup problems end the run with one line, not a traceback
        raise RecipeError(one_line(error)) from error
    return trainer, mel_transform, train_set, validation_set


def resume_or_start(cfg: DictConfig, trainer: Trainer, output_dir: Path) -> Position:
    """Load the last complete pair when ``resume=true``; refuse to overwrite one otherwise."""
    step = latest_checkpoint(output_dir)
    if step is None:
        if cfg.resume:
            log.info("resume=true but %s holds no complete checkpoint pair: starting at step 0",
                     output_dir)
        return Position()
    if not cfg.resume:
        raise RecipeError(f"{output_dir} already holds checkpoints up to step {step}; pass "
                          f"resume=true to continue that run or choose a new hydra.run.dir")
    try:
        generator_state, state = read_pair(output_dir, step)
        source = str(output_dir / f"g_{step:08d}")
        load_generator_state(trainer.generator, generator_state, source)
        trainer.load_state_dict(state, source.replace("/g_", "/do_"))
    except ValueError as error:
        raise RecipeError(one_line(error)) from error
    if cfg.warmup_minutes is not None and "warmup_steps" in state:
        trainer.warmup_steps = int(state["warmup_steps"])  # the step the time warm-up ended
    log.info("resumed from step %d (epoch %d) in %s", step, state.get("epoch", 0), output_dir)
    return Position(int(state.get("epoch", 0)), int(state.get("batch_in_epoch", 0)),
                    float(state.get("train_seconds", 0.0)))


def save(cfg: DictConfig, trainer: Trainer, position: Position, output_dir: Path) -> None:
    """The pair at the trainer's step (call on rank 0)."""
    state = trainer.state_dict()
    state.update(epoch=position.epoch, batch_in_epoch=position.batch_in_epoch,
                 train_seconds=position.seconds)
    save_pair(output_dir, trainer.step, generator_state_dict(trainer.generator), state,
              cfg.keep_checkpoints)


def mel_figure(reference: torch.Tensor, generated: torch.Tensor, title: str) -> Figure:
    """Reference over generated log-mel ``(M, T)`` images."""
    figure = Figure(figsize=EXAMPLE_FIGURE_SIZE, layout="constrained")
    for ax, mel, label in zip(figure.subplots(2, 1, sharex=True), (reference, generated),
                              ("reference", "generated")):
        ax.imshow(mel.cpu().numpy(), origin="lower", aspect="auto")
        ax.set_title(f"{title}: {label} log-mel")
    return figure


def run_validation(trainer: Trainer, validation_set: Dataset, mel_transform: MelSpectrogram,
                   runlog: RunLog, device: torch.device) -> dict[str, Any]:
    """Validate on rank 0; log the metrics, the tonal excess, two example waveforms and mels."""
    generator = unwrap(trainer.generator)
    result = validate(generator, validation_set, trainer.loss_mel,
                      int(mel_transform.sample_rate), device)
    result.metrics.update(tonal_excess(generator, float(mel_transform.sample_rate)))
    runlog.write("validation", trainer.step, result.metrics)
    if runlog.writer is not None:
        for name, reference, generated in result.examples:
            runlog.audio(f"generated/{name}", generated, int(mel_transform.sample_rate),
                         trainer.step)
            mels = (mel_transform(reference), mel_transform(generated))
            runlog.figure(f"mel/{name}", mel_figure(*mels, name), trainer.step)
    shown = {k: round(v, 4) for k, v in result.metrics.items() if v is not None}
    log.info("step %d validation: %s", trainer.step, shown)
    return result.metrics


def train(cfg: DictConfig, ctx: ProcessContext, output_dir: Path) -> dict[str, Any]:
    """The training loop; returns the last losses and validation metrics."""
    trainer, mel_transform, train_set, validation_set = build(cfg, ctx)
    position = resume_or_start(cfg, trainer, output_dir)
    batch_size = int(cfg.data.batch_size)
    sampler = ResumableSampler(train_set, ctx.world_size, ctx.rank, seed=int(cfg.seed))
    steps_per_epoch = len(sampler) // batch_size
    if steps_per_epoch == 0:
        raise RecipeError(f"the training set holds {len(train_set)} files, fewer than one batch "
                          f"(data.batch_size={batch_size} x {ctx.world_size} processes)")
    loader = DataLoader(train_set, batch_size, sampler=sampler, drop_last=True,
                        num_workers=int(cfg.data.num_workers),
                        pin_memory=ctx.device.type == "cuda")
    if ctx.distributed:
        ids = [ctx.device.index] if ctx.device.type == "cuda" else None
        trainer.generator = DistributedDataParallel(trainer.generator, device_ids=ids)
        trainer.mpd = DistributedDataParallel(trainer.mpd, device_ids=ids)
        trainer.msd = DistributedDataParallel(trainer.msd, device_ids=ids)
    runlog = RunLog(output_dir, tensorboard=bool(cfg.tensorboard)) if ctx.is_main else None
    if runlog is not None:
        runlog.truncate(trainer.step)
        config = hifigan_config(generator_fields(cfg.model), mel_transform,
                                batch_size=batch_size, learning_rate=cfg.optimiser.learning_rate,
                                adam_b1=cfg.optimiser.betas[0], adam_b2=cfg.optimiser.betas[1],
                                lr_decay=cfg.optimiser.lr_decay, seed=cfg.seed,
                                segment_size=int(cfg.data.segment_length),
                                num_gpus=ctx.world_size)
        write_json(output_dir / "config.json", config)
    max_steps = cfg.max_steps if cfg.max_steps is not None else float("inf")
    max_seconds = (float(cfg.max_minutes) * SECONDS_PER_MINUTE if cfg.max_minutes is not None
                   else float("inf"))
    warmup_seconds = (float(cfg.warmup_minutes) * SECONDS_PER_MINUTE
                      if cfg.warmup_minutes is not None else float("inf"))
    log.info("rank %d/%d: %d training files, %d steps per epoch, writing to %s", ctx.rank,
             ctx.world_size, len(train_set), steps_per_epoch, output_dir)
    bar = tqdm(total=None if cfg.max_steps is None else int(cfg.max_steps), initial=trainer.step,
               unit="step", disable=not (cfg.progress and ctx.is_main), dynamic_ncols=True)
    started, resumed_seconds = time.perf_counter(), position.seconds
    rate_step, rate_clock = trainer.step, started  # steps per second between two log lines
    last_losses: dict[str, float] = {}
    metrics: dict[str, Any] = {}
    saved_step = validated_step = trainer.step
    stop = trainer.step >= max_steps or resumed_seconds >= max_seconds
    if cfg.validate_at_start and trainer.step == 0 and validation_set is not None:
        if runlog is not None:  # the untrained generator: step 0 of every curve
            metrics = run_validation(trainer, validation_set, mel_transform, runlog, ctx.device)
        ctx.barrier()
    try:
        while not stop:
            train_set.set_epoch(position.epoch)
            sampler.set_epoch(position.epoch)
            sampler.start_batch(position.batch_in_epoch, batch_size)
            for mel, wav in loader:
                last_losses = trainer.train_step(mel.to(ctx.device), wav.to(ctx.device))
                position.batch_in_epoch += 1
                position.seconds = resumed_seconds + time.perf_counter() - started
                step = trainer.step
                bar.update(1)
                if runlog is not None and step % cfg.log_every == 0:
                    now = time.perf_counter()
                    rate = (step - rate_step) / (now - rate_clock)
                    rate_step, rate_clock = step, now
                    runlog.write("train", step, {**last_losses, "lr": trainer.learning_rate,
                                                 "epoch": position.epoch, "steps_per_second": rate,
                                                 "minutes": position.seconds / 60})
                    bar.set_postfix(mel=f"{last_losses['mel']:.3f}",
                                    g=f"{last_losses['generator']:.2f}",
                                    d=f"{last_losses.get('discriminator', 0.0):.2f}")
                stop, join = ctx.broadcast((step >= max_steps or position.seconds >= max_seconds,
                                            position.seconds >= warmup_seconds))
                if join and not trainer.adversarial:  # a time warm-up ends at this step
                    trainer.warmup_steps = step
                    log.info("step %d: warm-up over, the discriminators join", step)
                if step % cfg.checkpoint_every == 0 or stop:
                    if ctx.is_main:
                        save(cfg, trainer, position, output_dir)
                    saved_step = step
                if (validation_set is not None and cfg.validation_every
                        and (step % cfg.validation_every == 0 or stop)):
                    if runlog is not None:
                        metrics = run_validation(trainer, validation_set, mel_transform, runlog,
                                                 ctx.device)
                    validated_step = step
                    ctx.barrier()
                if stop:
                    break
            else:
                position.epoch += 1
                position.batch_in_epoch = 0
    except NonFiniteLossError as error:
        raise RecipeError(f"{error}; stopped. The last good checkpoint pair is step "
                          f"{latest_checkpoint(output_dir)} in {output_dir}") from error
    finally:
        bar.close()
        if runlog is not None:
            runlog.close()
    log.info("finished at step %d (%.1f min); last checkpoint step %d, last validation step %d",
             trainer.step, position.seconds / 60, saved_step, validated_step)
    return {"step": trainer.step, "losses": last_losses, "validation": metrics}


def run(cfg: DictConfig) -> dict[str, Any]:
    """Train as ``cfg`` says; setup problems raise ``RecipeError`` with one line."""
    try:
        ctx = init_process_context(cfg.device)
    except ValueError as error:
        raise RecipeError(one_line(error)) from error
    try:
        configure(cfg)
        output_dir = Path(ctx.broadcast(str(cfg.output_dir)))
        if ctx.is_main:
            log.info("config:\n%s", OmegaConf.to_yaml(cfg))
        return train(cfg, ctx, output_dir)
    finally:
        ctx.close()


@hydra.main(config_path="../configs", config_name="train", version_base="1.3")
def main(cfg: DictConfig) -> None:
    """Command-line entry point: a setup problem exits with status 1 and one log line."""
    run_or_exit(run, cfg, log)


if __name__ == "__main__":
    main()
