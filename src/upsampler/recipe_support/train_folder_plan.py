"""How a training start uses its run folder: whose files are there, and whether it resumes.

A run folder holds only what its runs made: a ``g_``/``do_`` file, temporary pair file,
``config.json`` or ``metrics.jsonl`` the folder's record (:mod:`.train_records`) does not
list is never written over, moved or deleted: :func:`plan_folder` refuses to start and
names it, unless ``adopt=true`` takes over complete foreign pairs. A folder made before
this record existed (``config.json``, ``metrics.jsonl`` and complete pairs, nothing else
pair-named) is adopted with one log line.

The fingerprint decides a resume: :data:`FREE_OPTIONS` (budgets, intervals, threads,
schedules: learning rate, ``optimiser.lr_decay``, warm-up) change freely and are recorded;
any other change (model, audio, upsampler, discriminator, data, loss, seed) is refused,
listing each, unless ``resume_changes=[...]`` names it. When an accepted change alters
the generator or audio fields of ``config.json``, the earlier pairs move with a copy of
their ``config.json`` into ``settings_until_<step>/``, so ``config.json`` beside a
checkpoint always describes that checkpoint.

:func:`plan_folder` only reads; :func:`~upsampler.recipe_support.train_records.commit_plan`
carries out the :class:`~upsampler.recipe_support.train_records.FolderPlan` it returns.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from upsampler.recipe_support.errors import RecipeError
from upsampler.recipe_support.records import RECORDS_DIR, settings_changes
from upsampler.recipe_support.train_records import (
    CONFIG_FILE,
    METRICS_FILE,
    RECORD_FORMAT,
    RECORD_NAME,
    RUN_FILES,
    Folder,
    FolderPlan,
    read_record,
    read_run_config,
    temporary_target,
)
from upsampler.training.checkpoints import GENERATOR_PREFIX, pair_step

ARCHIVE_PREFIX = "settings_until_"
# options that do not change what a checkpoint means: they change freely on resume
FREE_OPTIONS = (
    "max_steps", "max_minutes", "num_threads", "progress", "log_every", "checkpoint_every",
    "validation_every", "validate_at_start", "keep_checkpoints", "tensorboard", "device",
    "deterministic", "resume", "adopt", "resume_changes", "output_dir", "init_generator",
    "init_generator_config", "warmup_steps", "warmup_minutes", "optimiser.learning_rate",
    "optimiser.lr_decay", "data.num_workers", "data.validation_list",
    "data.validation_utterances",
)
# config.json fields about the training, not about what the generator and front end are
CONFIG_TRAINING_FIELDS = ("batch_size", "learning_rate", "adam_b1", "adam_b2", "lr_decay",
                          "seed", "segment_size", "num_gpus", "init_generator")


def split_settings(cfg: DictConfig) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(fingerprint, free)``: the resolved options that decide what a checkpoint means,
    and the :data:`FREE_OPTIONS` (dotted keys) that do not."""
    settings = OmegaConf.to_container(cfg, resolve=True)
    settings.pop("hydra", None)
    free: dict[str, Any] = {}
    for dotted in FREE_OPTIONS:
        *parents, leaf = dotted.split(".")
        node: Any = settings
        for parent in parents:
            node = node.get(parent, {}) if isinstance(node, dict) else {}
        if isinstance(node, dict) and leaf in node:
            free[dotted] = node.pop(leaf)
    return json.loads(json.dumps(settings)), json.loads(json.dumps(free))


def describing_fields(config: Mapping[str, Any]) -> dict[str, Any]:
    """The generator and audio fields of a ``config.json`` (its training fields left out)."""
    return json.loads(json.dumps({k: v for k, v in config.items()
                                  if k not in CONFIG_TRAINING_FIELDS}))


def _covered(change_key: str, accepted: Sequence[str]) -> bool:
    return any(change_key == name or change_key.startswith(f"{name}.") for name in accepted)


def _foreign_error(output_dir: Path, foreign: Sequence[str], folder: Folder) -> RecipeError:
    lone_generators = [n for n in foreign if n.startswith(GENERATOR_PREFIX)
                       and pair_step(n)[1] not in folder.complete()]  # type: ignore[index]
    hint = (f"to fine-tune from it pass init_generator={output_dir / lone_generators[-1]} "
            f"with a new hydra.run.dir; " if lone_generators else "")
    return RecipeError(
        f"output_dir {str(output_dir)!r} holds files no run of this folder wrote "
        f"({', '.join(foreign)}), and a run never writes over, moves or deletes them: {hint}"
        f"pass adopt=true to take over a complete g_/do_ pair (with resume=true to continue "
        f"it), or choose a new hydra.run.dir")


def plan_folder(cfg: DictConfig, output_dir: Path, config: Mapping[str, Any]) -> FolderPlan:
    """Decide, reading only, how this start uses ``output_dir``; ``RecipeError`` on refusal.

    ``config`` is the ``config.json`` this run writes. Refusals: files the record does not
    list (unless ``adopt=true`` takes over complete pairs), checkpoints without
    ``resume=true``, and fingerprint changes ``resume_changes`` does not name.
    """
    folder = Folder.read(output_dir)
    record = read_record(output_dir)
    adopt, resume = bool(cfg.get("adopt", False)), bool(cfg.resume)
    accepted = [str(name) for name in cfg.get("resume_changes", [])]
    settings, free = split_settings(cfg)
    notes: list[str] = []
    adopted: list[str] = []
    old_settings: dict[str, Any] | None = None
    if record is None:
        complete = folder.complete()
        lone = [n for n in folder.names(set(folder.pairs) - set(complete))
                if not n.startswith(".")]
        present = folder.names(set(folder.pairs)) + folder.run_files
        if complete and set(RUN_FILES) <= set(folder.run_files) and not lone:
            adopted = present
            notes.append(f"{output_dir} was made before {RECORDS_DIR}/{RECORD_NAME}: adopting "
                         f"its pairs at steps {complete}, {CONFIG_FILE} and {METRICS_FILE}")
        elif present and adopt and complete and not lone:
            adopted = present
            notes.append(f"adopt=true: taking over {', '.join(present)} in {output_dir}")
        elif present:
            raise _foreign_error(output_dir, present, folder)
        record = {"format": RECORD_FORMAT, "settings": None, "free": None, "checkpoints": [],
                  "files": [], "archives": {}, "history": []}
    else:
        old_settings = record.get("settings")
        archived = {s for steps in record.get("archives", {}).values() for s in steps}
        owned_steps = set(record.get("checkpoints", [])) | archived
        owned = set(folder.names(owned_steps)) | set(record.get("files", []))
        foreign = [n for n in folder.names(set(folder.pairs)) + folder.run_files
                   if n not in owned]
        if foreign:
            foreign_steps = {pair_step(n)[1] for n in foreign if pair_step(n)}  # type: ignore
            complete_foreign = foreign_steps & set(folder.complete())
            if not (adopt and foreign_steps and complete_foreign == foreign_steps
                    and all(pair_step(n) or temporary_target(n) or n in RUN_FILES
                            for n in foreign)):
                raise _foreign_error(output_dir, foreign, folder)
            adopted = foreign
            notes.append(f"adopt=true: taking over {', '.join(foreign)} in {output_dir}")
        record = json.loads(json.dumps(record))
    record["files"] = sorted(set(record["files"]) | set(RUN_FILES))
    adopted_steps = {pair_step(n)[1] for n in adopted if pair_step(n)}  # type: ignore[index]
    main_steps = sorted((set(record["checkpoints"]) | adopted_steps) & set(folder.complete()))
    record["checkpoints"] = sorted(set(record["checkpoints"]) | adopted_steps)
    archives: dict[str, list[int]] = record.setdefault("archives", {})
    latest_archive = max(archives.items(), key=lambda item: max(item[1], default=-1),
                         default=None)
    resume_dir: Path | None = None
    resume_step: int | None = None
    resume_steps: list[int] = []
    if main_steps:
        resume_dir, resume_steps = output_dir, main_steps
    elif latest_archive is not None and latest_archive[1]:
        resume_dir, resume_steps = output_dir / latest_archive[0], sorted(latest_archive[1])
    if resume_steps:
        resume_step = resume_steps[-1]
    if resume_step is not None and not resume:
        raise RecipeError(f"{output_dir} already holds checkpoints up to step {resume_step}; "
                          f"pass resume=true to continue that run or choose a new "
                          f"hydra.run.dir")
    changes: list[str] = []
    old_config = read_run_config(output_dir) if CONFIG_FILE in folder.run_files else None
    config_changes = ([] if old_config is None else
                      [f"config.json {c}" for c in settings_changes(
                          describing_fields(old_config), describing_fields(config))])
    if resume_step is not None:
        if old_settings is not None:
            changes = settings_changes(old_settings, settings)
        elif old_config is not None:
            changes = config_changes  # a folder without a fingerprint: its config.json
        keys = [_change_key(c) for c in changes]
        unknown = [name for name in accepted
                   if not _is_option(settings, name) and not any(_covered(k, [name])
                                                                 for k in keys)]
        if unknown:
            raise RecipeError(f"resume_changes={accepted} names {unknown}, not a setting of "
                              f"this run; name dotted options (audio.fmax) or groups (model)")
        refused = [c for c in changes if not _covered(_change_key(c), accepted)]
        if refused:
            keys = sorted({_change_key(c) for c in refused})
            raise RecipeError(
                f"resume=true in {output_dir} with settings that change what its checkpoints "
                f"mean: {'; '.join(refused)}; undo them, or pass "
                f"resume_changes=[{','.join(keys)}] to continue with them on purpose")
        if changes:
            notes.append(f"resume with changed settings (resume_changes={accepted}): "
                         + "; ".join(changes))
    free_changes = ([] if not record.get("free") else
                    [c for c in settings_changes(record["free"], free)
                     if not c.startswith(("resume:", "adopt:", "resume_changes:"))])
    if free_changes and resume_step is not None:
        notes.append("resume with " + "; ".join(free_changes))
    plan = FolderPlan(output_dir, record, resume_dir, resume_step, notes=notes,
                      resume_steps=resume_steps)
    if resume_step is not None and config_changes and main_steps:
        name = f"{ARCHIVE_PREFIX}{resume_step:08d}"
        if (output_dir / name).exists() and name not in archives:
            raise RecipeError(f"{output_dir / name} exists and is not this run's; move it "
                              f"away to resume with changed config.json fields")
        plan.archive, plan.archive_steps = name, main_steps
        notes.append(f"config.json changes ({'; '.join(config_changes)}): the pairs at steps "
                     f"{main_steps} and their config.json move to {output_dir / name}")
    record["settings"], record["free"] = settings, free
    record["history"].append({
        "started": time.strftime("%Y-%m-%dT%H:%M:%S"), "pid": os.getpid(),
        "from_step": resume_step or 0, "adopted": adopted, "changes": changes,
        "resume_changes": accepted, "free_changes": free_changes,
    })
    return plan


def _change_key(change: str) -> str:
    """``audio.fmax`` of ``"audio.fmax: 8000 -> 7600"`` (``fmax`` of ``"config.json fmax: ..."``)."""
    return change.split(":")[0].removeprefix("config.json ")


def _is_option(settings: Mapping[str, Any], dotted: str) -> bool:
    node: Any = settings
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return False
        node = node[part]
    return True


__all__ = ["FREE_OPTIONS", "describing_fields", "plan_folder", "split_settings"]
