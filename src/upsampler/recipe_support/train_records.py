"""Which files of a training run folder its runs wrote, and with which settings.

``records/checkpoints.json`` (written atomically, in the style of :mod:`records`) lists the
checkpoint steps this folder's runs wrote or are writing (a step is recorded before its
pair is written, so a killed write is still the run's own), the other files they write
(``config.json``, ``metrics.jsonl``), folders of pairs kept from earlier settings, the
settings fingerprint of the kept pairs and a history of every start. A run folder holds
only what its runs made: a ``g_``/``do_`` file, temporary pair file, ``config.json`` or
``metrics.jsonl`` the record does not list is never written over, moved or deleted:
:func:`plan_folder` refuses to start and names it, unless ``adopt=true`` takes over
complete foreign pairs. A folder made before this record existed (``config.json``,
``metrics.jsonl`` and complete pairs, nothing else pair-named) is adopted with one log line.

The fingerprint decides a resume: :data:`FREE_OPTIONS` (budgets, intervals, threads,
schedules: learning rate, ``optimiser.lr_decay``, warm-up) change freely and are recorded;
any other change (model, audio, upsampler, discriminator, data, loss, seed) is refused,
listing each, unless ``resume_changes=[...]`` names it. When an accepted change alters
the generator or audio fields of ``config.json``, the earlier pairs move with a copy of
their ``config.json`` into ``settings_until_<step>/``, so ``config.json`` beside a
checkpoint always describes that checkpoint.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from upsampler._atomic import TEMP_MARKER, is_temporary, write_json
from upsampler.recipe_support.errors import RecipeError, one_line
from upsampler.recipe_support.records import RECORDS_DIR, settings_changes
from upsampler.training.checkpoints import (
    GENERATOR_PREFIX,
    STATE_PREFIX,
    checkpoint_name,
    pair_step,
)

log = logging.getLogger("train")

RECORD_NAME = "checkpoints.json"
RECORD_FORMAT = 1
CONFIG_FILE, METRICS_FILE = "config.json", "metrics.jsonl"
RUN_FILES = (CONFIG_FILE, METRICS_FILE)
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


def record_path(output_dir: Path) -> Path:
    """``<output_dir>/records/checkpoints.json``."""
    return output_dir / RECORDS_DIR / RECORD_NAME


def read_record(output_dir: Path) -> dict[str, Any] | None:
    """The folder's record, None when there is none; an unreadable one is a ``RecipeError``."""
    path = record_path(output_dir)
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise RecipeError(f"{str(path)!r} is not readable ({one_line(error)}); it says which "
                          f"files the run wrote: restore it or choose a new hydra.run.dir"
                          ) from error
    if not isinstance(record, dict) or record.get("format") != RECORD_FORMAT:
        raise RecipeError(f"{str(path)!r} is not a format-{RECORD_FORMAT} training record; "
                          f"choose a new hydra.run.dir")
    return record


def write_record(output_dir: Path, record: Mapping[str, Any]) -> None:
    """Write the record atomically."""
    write_json(record_path(output_dir), dict(record))


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


def _target_name(path_name: str) -> str | None:
    """``g_00000004`` for a temporary ``.g_00000004.partial-...`` of a pair file, else None."""
    if not path_name.startswith(".") or TEMP_MARKER not in path_name:
        return None
    target = path_name[1:].split(TEMP_MARKER)[0]
    return target if pair_step(target) is not None else None


@dataclass
class Folder:
    """What a run folder holds that a training run would write, by name."""

    pairs: dict[int, set[str]] = field(default_factory=dict)  # step -> {"g_", "do_"} present
    temporaries: dict[str, str] = field(default_factory=dict)  # temp name -> pair file name
    run_files: list[str] = field(default_factory=list)  # config.json / metrics.jsonl present

    @classmethod
    def read(cls, output_dir: Path) -> "Folder":
        """The folder's pair files, pair temporaries and run files (empty when missing)."""
        folder = cls()
        if not output_dir.is_dir():
            return folder
        for path in sorted(output_dir.iterdir()):
            parsed = pair_step(path.name)
            if parsed is not None and path.is_file():
                folder.pairs.setdefault(parsed[1], set()).add(parsed[0])
            elif is_temporary(path) and _target_name(path.name) is not None:
                folder.temporaries[path.name] = str(_target_name(path.name))
            elif path.name in RUN_FILES:
                folder.run_files.append(path.name)
        return folder

    def complete(self) -> list[int]:
        """Steps with both files present, ascending."""
        return sorted(s for s, have in self.pairs.items()
                      if have == {GENERATOR_PREFIX, STATE_PREFIX})

    def names(self, steps: Sequence[int] | set[int]) -> list[str]:
        """The pair files present at ``steps`` and the temporaries of their names."""
        wanted = set(steps)
        found = [checkpoint_name(prefix, step) for step in sorted(wanted & set(self.pairs))
                 for prefix in sorted(self.pairs[step])]
        found += [name for name, target in self.temporaries.items()
                  if pair_step(target)[1] in wanted]  # type: ignore[index]
        return found


@dataclass
class FolderPlan:
    """What a start does to its run folder; :func:`commit_plan` carries it out."""

    output_dir: Path
    record: dict[str, Any]  # the record to write (steps, files, settings, history)
    resume_dir: Path | None  # where the pair to continue lies now (None: start at step 0)
    resume_step: int | None
    archive: str | None = None  # folder the earlier pairs move into
    archive_steps: list[int] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # log lines of what the start decided
    # the complete pairs in resume_dir, ascending (resume_step last): earlier ones are the
    # fall-back when the newest does not load
    resume_steps: list[int] = field(default_factory=list)


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
                    and all(pair_step(n) or _target_name(n) or n in RUN_FILES
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
    old_config = _read_config(output_dir) if CONFIG_FILE in folder.run_files else None
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


def _read_config(output_dir: Path) -> dict[str, Any] | None:
    try:
        config = json.loads((output_dir / CONFIG_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return config if isinstance(config, dict) else None


def commit_plan(plan: FolderPlan) -> None:
    """Write the record, and move earlier pairs when the plan says so.

    Call with the folder's ``RunLock`` held, after the pair to continue has loaded. The
    record lists an archive before its files move, so a start killed mid-move finds them
    all its own (and a later one with the same changes moves the rest).
    """
    for note in plan.notes:
        log.info("%s", note)
    record, output_dir = plan.record, plan.output_dir
    if plan.archive is not None:
        archive = output_dir / plan.archive
        record["archives"][plan.archive] = sorted(
            set(record["archives"].get(plan.archive, [])) | set(plan.archive_steps))
        record["checkpoints"] = [s for s in record["checkpoints"] if s not in plan.archive_steps]
        write_record(output_dir, record)
        archive.mkdir(exist_ok=True)
        if (output_dir / CONFIG_FILE).is_file():
            write_json(archive / CONFIG_FILE, _read_config(output_dir))
        for step in plan.archive_steps:
            for prefix in (GENERATOR_PREFIX, STATE_PREFIX):
                name = checkpoint_name(prefix, step)
                if (output_dir / name).is_file():
                    os.replace(output_dir / name, archive / name)
    else:
        write_record(output_dir, record)


def record_checkpoint(output_dir: Path, step: int) -> list[int]:
    """List ``step`` as the run's before its pair is written; the steps now listed."""
    record = read_record(output_dir)
    if record is None:
        raise RecipeError(f"{record_path(output_dir)} vanished while the run was writing; "
                          f"the run stops rather than write unlisted files")
    record["checkpoints"] = sorted(set(record["checkpoints"]) | {step})
    write_record(output_dir, record)
    return record["checkpoints"]


def forget_checkpoints(output_dir: Path, remaining: Sequence[int]) -> None:
    """Keep only ``remaining`` in the record's checkpoint steps (after pruning)."""
    record = read_record(output_dir)
    if record is not None:
        record["checkpoints"] = sorted(set(remaining))
        write_record(output_dir, record)


__all__ = [
    "FREE_OPTIONS", "FolderPlan", "commit_plan", "describing_fields", "forget_checkpoints",
    "plan_folder", "read_record", "record_checkpoint", "record_path", "split_settings",
]
