"""Train a HiFi-GAN generator built on the package's layers (Hydra recipe).

    python recipes/train.py data.train_list=LJSpeech-1.1/training.txt \\
        data.validation_list=LJSpeech-1.1/validation.txt data.wav_dir=LJSpeech-1.1/wavs \\
        audio=22k_hop256 model=hifigan_v1 hydra.run.dir=runs/v1
    python recipes/train.py ... resume=true hydra.run.dir=runs/v1     # continue the last pair
    python recipes/train.py ... init_generator=hifigan_v1_universal   # fine-tune pretrained V1
    python recipes/train.py experiment=demo data.train_list=...       # small CPU configuration
    torchrun --nproc-per-node=2 recipes/train.py ... hydra.run.dir=runs/v1

The run folder gets ``g_XXXXXXXX`` / ``do_XXXXXXXX`` checkpoint pairs in HiFi-GAN's format,
``config.json`` (``recipes/vocode.py checkpoint=<g> model_config=<config.json>`` reads it),
``metrics.jsonl`` and, with the ``tensorboard`` extra, ``tensorboard/``. Only rank 0 writes.
``init_generator=<pretrained name or g_ file>`` fine-tunes: the generator starts from those
weights, its model fields and audio front end come from the checkpoint's ``config.json``
(a command-line ``audio``/``model`` override that disagrees is an error), and the
discriminators, optimisers and step count start fresh; with ``resume=true`` and a pair in
the run folder, the run continues that pair and ignores ``init_generator``.
Every option is checked before any work (``recipe_support/train_options.py``). One run per
folder (a lock naming the holder's pid), and a folder holds only what its runs made
(``records/checkpoints.json``): files it does not list are never written over or deleted
(``adopt=true`` takes over a foreign ``g_``/``do_`` pair), and ``resume=true`` refuses
changes to what a checkpoint means unless ``resume_changes=[...]`` names them.
A setup problem, a non-finite loss, a full disk or unwritable folder (``cannot write
'<path>': no space left on device``) ends the run with one log line and exit status 1; the
last complete checkpoint pair stays in place and no half-written file is left. With
``resume=true`` a newest pair that does not load (truncated, garbage, a ``do_`` of the
wrong shape) is named in a warning, renamed ``<name>.unloadable``, and the run continues
the previous pair; when no pair loads the run is refused with one line.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import hydra
import torch
from matplotlib.figure import Figure
from omegaconf import DictConfig, OmegaConf
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from upsampler.audio import MelSpectrogram
from upsampler._atomic import WriteError, write_json
from upsampler.recipe_support.build import generator_fields
from upsampler.recipe_support.front_end import given_overrides
from upsampler.recipe_support.distributed import ProcessContext, init_process_context
from upsampler.recipe_support.errors import (
    RecipeError,
    check_run_dir_override,
    one_line,
    run_or_exit,
)
from upsampler.recipe_support.finetune import apply_init_generator
from upsampler.recipe_support.recipe_options import check_writable_on_main
from upsampler.recipe_support.train_options import check_train_options
from upsampler.recipe_support.train_records import commit_plan
from upsampler.recipe_support.train_setup import (
    Position,
    build,
    claim_folder,
    configure,
    default_run_name,
    last_pair_line,
    resume_or_start,
    save,
)
from upsampler.training.artifacts import pause_line_probe, tonal_excess
from upsampler.training.checkpoints import hifigan_config, latest_checkpoint, unwrap
from upsampler.training.loop import NonFiniteLossError, Trainer
from upsampler.training.monitor import RunLog
from upsampler.training.sampling import ResumableSampler
from upsampler.training.validation import validate

log = logging.getLogger("train")
# configs/train.yaml's default hydra.run.dir: ${train_run_name:${now:%H-%M-%S}}
OmegaConf.register_new_resolver("train_run_name", default_run_name, replace=True)
SECONDS_PER_MINUTE = 60.0
EXAMPLE_FIGURE_SIZE = (8.0, 5.0)  # inches: reference over generated mel


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
    result.metrics.update(pause_line_probe(generator, mel_transform))
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
    """Build, claim the run folder (rank 0, broadcast), then train in it; returns the last
    losses and validation metrics. The folder's lock is held until the loop ends."""
    trainer, mel_transform, train_set, validation_set = build(cfg, ctx)
    batch_size = int(cfg.data.batch_size)
    config = hifigan_config(generator_fields(cfg.model), mel_transform,
                            batch_size=batch_size, learning_rate=cfg.optimiser.learning_rate,
                            adam_b1=cfg.optimiser.betas[0], adam_b2=cfg.optimiser.betas[1],
                            lr_decay=cfg.optimiser.lr_decay, seed=cfg.seed,
                            segment_size=int(cfg.data.segment_length),
                            num_gpus=ctx.world_size)
    if cfg.get("init_generator") is not None:
        config["init_generator"] = str(cfg.init_generator)  # where the weights started
    lock, plan = None, None
    claim: tuple[str, Any] = ("ok", (None, None))
    if ctx.is_main:
        try:
            lock, plan = claim_folder(cfg, output_dir, config)
            claim = ("ok", (plan.resume_dir, plan.resume_steps))
        except RecipeError as error:
            claim = ("error", str(error))
    kind, value = ctx.broadcast(claim)  # every rank stops, or resumes the same pair
    if kind == "error":
        raise RecipeError(value)
    try:
        position = resume_or_start(cfg, trainer, *value, rename_unusable=ctx.is_main)
        if plan is not None:
            plan.record["history"][-1]["from_step"] = trainer.step  # an earlier pair on fall-back
            commit_plan(plan)  # the record (and any move of earlier pairs) once it loaded
        ctx.barrier()
        return train_in_folder(cfg, ctx, output_dir, trainer, mel_transform, train_set,
                               validation_set, config, position)
    except WriteError as error:  # a full disk or unwritable folder: one line, pairs kept
        raise RecipeError(f"{one_line(error)}; stopped. {last_pair_line(output_dir)}"
                          ) from error
    finally:
        if lock is not None:
            lock.release()


def train_in_folder(cfg: DictConfig, ctx: ProcessContext, output_dir: Path, trainer: Trainer,
                    mel_transform: MelSpectrogram, train_set: Dataset,
                    validation_set: Dataset | None, config: dict[str, Any],
                    position: Position) -> dict[str, Any]:
    """The loop in a claimed folder, from ``position`` (the loaded pair's, or step 0)."""
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
        try:
            runlog.truncate(trainer.step)
        except ValueError as error:
            raise RecipeError(one_line(error)) from error
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
    validated_step: int | None = None
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
        raise RecipeError(f"{error}; stopped. {last_pair_line(output_dir)}"
                          ) from error
    finally:
        bar.close()
        if runlog is not None:
            runlog.close()
    saved = latest_checkpoint(output_dir)
    log.info("finished at step %d (%.1f min); %s, %s", trainer.step, position.seconds / 60,
             "no checkpoint written" if saved is None else f"last checkpoint step {saved}",
             "no validation run" if validated_step is None
             else f"last validation step {validated_step}")
    return {"step": trainer.step, "losses": last_losses, "validation": metrics}


def run(cfg: DictConfig, overrides: Sequence[str] | None = None) -> dict[str, Any]:
    """Train as ``cfg`` says; setup problems raise ``RecipeError`` with one line.

    Every option is checked first; a bad one leaves no file behind.
    ``overrides`` are the command line's Hydra overrides (those of the running
    ``@hydra.main`` when None); with ``init_generator`` set they are checked against the
    checkpoint's model and audio fields, which then replace ``cfg.model`` and ``cfg.audio``.
    """
    check_train_options(cfg)
    cfg = apply_init_generator(
        cfg, given_overrides() if overrides is None else overrides)
    try:
        ctx = init_process_context(cfg.device)
    except ValueError as error:
        raise RecipeError(one_line(error)) from error
    try:
        # the folder can be written before any model or data is loaded
        check_writable_on_main(ctx, str(cfg.output_dir), "output_dir")
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
    check_run_dir_override(sys.argv)
    main()
