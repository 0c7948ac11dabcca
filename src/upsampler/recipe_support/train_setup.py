"""Building and resuming a training run from its Hydra config (serves ``recipes/train.py``).

``build`` makes the generator, discriminators, trainer and datasets (a setup problem is one
``RecipeError`` line); ``claim_folder`` (rank 0, with the folder's ``RunLock`` held) checks
the run folder against its ``records/checkpoints.json`` (see ``train_folder_plan``) and says
which pair to continue; ``resume_or_start`` loads that pair, or (a new run with
``init_generator``) the pretrained generator weights; ``save`` lists the step in the record,
then writes the pair at the trainer's step with the data position and prunes the run's own
older pairs. ``default_run_name`` names the default run folder of a launch.
"""

from __future__ import annotations

import logging
import os
import random
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig
from torch import nn
from torch.utils.data import Dataset

from upsampler.audio import MelSpectrogram
from upsampler.recipe_support.build import check_model_matches_audio
from upsampler.recipe_support.distributed import ProcessContext
from upsampler.recipe_support.errors import RecipeError, one_line
from upsampler.recipe_support.finetune import load_init_generator
from upsampler.recipe_support.lock import RunLock
from upsampler.recipe_support.train_folder_plan import plan_folder
from upsampler.recipe_support.train_records import (
    FolderPlan,
    forget_checkpoints,
    record_checkpoint,
)
from upsampler.training import data as training_data
from upsampler.training.checkpoints import (
    GENERATOR_PREFIX,
    STATE_PREFIX,
    checkpoint_name,
    complete_steps,
    generator_state_dict,
    latest_checkpoint,
    load_generator_state,
    read_pair,
    save_pair,
)
from upsampler.training.discriminators import MultiPeriodDiscriminator, MultiScaleDiscriminator
from upsampler.training.losses import MultiResolutionSTFTLoss
from upsampler.training.loop import LossWeights, Trainer

log = logging.getLogger("train")
CUBLAS_DETERMINISTIC = ":4096:8"  # cuBLAS workspace setting deterministic algorithms need
UNTIL_THE_CLOCK = sys.maxsize  # warm-up step count while warmup_minutes decides
RUN_ID_ENV = "TORCHELASTIC_RUN_ID"  # torchrun's launch id, the same on every rank
UNNAMED_LAUNCH = "none"  # torchrun's run id when --rdzv-id is not given


def default_run_name(clock: str) -> str:
    """The last part of the default ``hydra.run.dir``: never shared by unrelated runs.

    A plain run: ``clock`` (the start time) and the process id. A ``torchrun`` launch: its
    run id (``--standalone`` makes a unique one), the same on every rank; without one
    (``none``) the launching agent's process id, the parent of every rank.
    """
    run_id = os.environ.get(RUN_ID_ENV)
    if run_id and run_id != UNNAMED_LAUNCH:
        return run_id
    if run_id == UNNAMED_LAUNCH:
        return f"torchrun-{os.getppid()}"
    return f"{clock}-{os.getpid()}"


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


def build_datasets(cfg: DictConfig, mel_transform: nn.Module) -> tuple[Dataset, Dataset | None]:
    """Training segments and held-out utterances (None without ``data.validation_list``)."""
    data = cfg.data

    def files(list_path: str | None) -> list[Path]:
        if list_path is None:
            if data.wav_dir is None:
                raise ValueError("set data.train_list (HiFi-GAN's training.txt) or data.wav_dir "
                                 "(a folder of wavs); both are null")
            return training_data.find_wavs(Path(data.wav_dir).expanduser())
        wav_dir = (data.wav_dir if data.wav_dir is not None
                   else training_data.default_wav_dir(Path(list_path)))
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


def claim_folder(cfg: DictConfig, output_dir: Path, config: Mapping[str, Any]
                 ) -> tuple[RunLock, FolderPlan]:
    """Take ``output_dir`` for this run (rank 0): the held lock and the checked plan.

    The folder is checked first without writing anything (a refusal leaves it as it was),
    then locked (one run per folder: a second is refused naming the holder's pid) and
    checked again. ``config`` is the ``config.json`` the run writes. Nothing is recorded
    yet: ``commit_plan`` writes the record once the pair to continue has loaded. Refusals
    are ``RecipeError`` lines; the caller releases the lock.
    """
    plan_folder(cfg, output_dir, config)  # read-only: refuse before creating anything
    lock = RunLock(output_dir)
    lock.acquire()
    try:
        return lock, plan_folder(cfg, output_dir, config)
    except BaseException:
        lock.release()
        raise


UNUSABLE_SUFFIX = ".unloadable"  # a pair that did not load is renamed aside with this


def load_pair(trainer: Trainer, resume_dir: Path, step: int) -> dict[str, Any]:
    """Load the pair at ``step`` into ``trainer``; its training state. Any failure (a file
    that does not load, a ``g_`` or ``do_`` dict of the wrong shape, another architecture)
    is a one-line ``ValueError`` naming the file."""
    generator_state, state = read_pair(resume_dir, step)
    source = str(resume_dir / checkpoint_name(GENERATOR_PREFIX, step))
    try:
        load_generator_state(trainer.generator, generator_state, source)
        source = str(resume_dir / checkpoint_name(STATE_PREFIX, step))
        trainer.load_state_dict(state, source)
        float(state.get("scheduler_g", {}).get("gamma", trainer.lr_decay))
        for key in ("epoch", "batch_in_epoch", "warmup_steps"):
            int(state.get(key, 0))
        float(state.get("train_seconds", 0.0))
    except ValueError:
        raise
    except Exception as error:  # a dict of the wrong shape: KeyError, TypeError, ...
        kind = GENERATOR_PREFIX if Path(source).name.startswith(GENERATOR_PREFIX) else STATE_PREFIX
        raise ValueError(f"{source!r} does not hold what a {kind} file holds "
                         f"({one_line(error)[:200]})") from error
    return state


def set_aside(resume_dir: Path, step: int) -> list[str]:
    """Rename the pair at ``step`` to ``<name>.unloadable`` so it no longer counts as a
    complete pair (pruning would otherwise keep it over the pairs the run writes); a
    folder that refuses the rename is a one-line ``RecipeError``."""
    moved = []
    for prefix in (GENERATOR_PREFIX, STATE_PREFIX):
        path = resume_dir / checkpoint_name(prefix, step)
        if path.is_file():
            try:
                os.replace(path, path.with_name(path.name + UNUSABLE_SUFFIX))
            except OSError as error:
                raise RecipeError(f"cannot rename the unloadable {str(path)!r} aside "
                                  f"({one_line(error)}); move it away by hand") from error
            moved.append(path.name + UNUSABLE_SUFFIX)
    return moved


def resume_or_start(cfg: DictConfig, trainer: Trainer, resume_dir: Path | None,
                    steps: Sequence[int] | int | None, rename_unusable: bool = True
                    ) -> Position:
    """Load the newest pair of ``steps`` in ``resume_dir`` that loads (``claim_folder``
    decided them: the run's complete pairs, ascending), or start.

    A pair that does not load (a truncated or garbage file, a ``do_`` of the wrong shape) is
    skipped with a warning naming the file and why, and (``rename_unusable``: rank 0)
    renamed to ``<name>.unloadable``; the run continues the previous pair. When no pair
    loads the run is refused with one ``RecipeError`` line listing each pair's problem.
    A run that starts at step 0 with ``init_generator`` set (a file path, as
    ``apply_init_generator`` leaves it) loads those generator weights; the discriminators and
    optimisers stay fresh. A resumed run continues its own pair and ignores ``init_generator``
    (one log line says so), so the same command line both starts and continues a fine-tuning.
    """
    init_generator = cfg.get("init_generator")
    candidates = ([] if steps is None else [steps] if isinstance(steps, int)
                  else sorted(steps))
    if not candidates or resume_dir is None:
        if cfg.resume:
            log.info("resume=true but the run folder holds no complete checkpoint pair: "
                     "starting at step 0")
        if init_generator is not None:
            load_init_generator(trainer.generator, init_generator,
                                cfg.get("init_generator_config"))
            log.info("fine-tuning: generator weights from %s; discriminators and optimisers "
                     "fresh, step 0", init_generator)
        return Position()
    problems: list[str] = []
    unusable: list[int] = []
    for step in reversed(candidates):
        try:
            state = load_pair(trainer, resume_dir, step)
            break
        except ValueError as error:
            problems.append(f"step {step}: {' '.join(str(error).split())}")
            unusable.append(step)
            log.warning("checkpoint pair at step %d in %s does not load: %s", step, resume_dir,
                        " ".join(str(error).split()))
    else:
        raise RecipeError(f"resume=true but no checkpoint pair in {resume_dir} loads "
                          f"({'; '.join(problems)}); restore a pair or choose a new "
                          f"hydra.run.dir")
    for bad in unusable:
        moved = set_aside(resume_dir, bad) if rename_unusable else []
        log.warning("continuing from the earlier pair at step %d instead of step %d%s", step,
                    bad, f"; the unloadable files are renamed {', '.join(moved)}"
                    if moved else "")
    saved_decay = state.get("scheduler_g", {}).get("gamma", trainer.lr_decay)
    if saved_decay != trainer.lr_decay:
        log.info("optimiser.lr_decay %g per step from here on (the checkpoint's run used %g); "
                 "the rate continues from %.3g", trainer.lr_decay, saved_decay,
                 trainer.learning_rate)
    if cfg.warmup_minutes is not None and "warmup_steps" in state:
        trainer.warmup_steps = int(state["warmup_steps"])  # the step the time warm-up ended
    log.info("resumed from step %d (epoch %d) in %s", step, state.get("epoch", 0), resume_dir)
    if init_generator is not None:
        log.info("init_generator=%s ignored: the run continues its own pair at step %d",
                 init_generator, step)
    return Position(int(state.get("epoch", 0)), int(state.get("batch_in_epoch", 0)),
                    float(state.get("train_seconds", 0.0)))


def last_pair_line(output_dir: Path) -> str:
    """``The last complete checkpoint pair is step 4 in <dir>``, or that there is none."""
    step = latest_checkpoint(output_dir)
    if step is None:
        return f"No checkpoint pair written in {output_dir}"
    return f"The last complete checkpoint pair is step {step} in {output_dir}"


def save(cfg: DictConfig, trainer: Trainer, position: Position, output_dir: Path) -> None:
    """The pair at the trainer's step (call on rank 0): listed in the record first, then
    written, then the run's own older pairs pruned to ``keep_checkpoints``. A failed write
    raises ``WriteError`` and leaves no file of the new pair; the older pairs stay."""
    state = trainer.state_dict()
    state.update(epoch=position.epoch, batch_in_epoch=position.batch_in_epoch,
                 train_seconds=position.seconds)
    owned = record_checkpoint(output_dir, trainer.step)  # a WriteError: nothing new on disk
    save_pair(output_dir, trainer.step, generator_state_dict(trainer.generator), state,
              cfg.keep_checkpoints, owned)
    forget_checkpoints(output_dir, [s for s in owned if s in complete_steps(output_dir)])
