"""Which files of a training run folder its runs wrote: the record, and what the folder holds.

``records/checkpoints.json`` (written atomically, in the style of :mod:`records`) lists the
checkpoint steps this folder's runs wrote or are writing (a step is recorded before its
pair is written, so a killed write is still the run's own), the other files they write
(``config.json``, ``metrics.jsonl``), folders of pairs kept from earlier settings, the
settings fingerprint of the kept pairs and a history of every start. :class:`Folder` lists
what a folder holds by name; from the two,
:func:`~upsampler.recipe_support.train_folder_plan.plan_folder` decides how a start uses
the folder (whose files, whether it resumes), and :func:`commit_plan` carries that out.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from upsampler._atomic import TEMP_MARKER, is_temporary, write_json
from upsampler.recipe_support.errors import RecipeError, one_line
from upsampler.recipe_support.records import RECORDS_DIR
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


def temporary_target(path_name: str) -> str | None:
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
            elif is_temporary(path) and temporary_target(path.name) is not None:
                folder.temporaries[path.name] = str(temporary_target(path.name))
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


def read_run_config(output_dir: Path) -> dict[str, Any] | None:
    """The folder's ``config.json``, None when it is missing, unreadable or not a mapping."""
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
            write_json(archive / CONFIG_FILE, read_run_config(output_dir))
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
    "CONFIG_FILE", "Folder", "FolderPlan", "METRICS_FILE", "RECORD_FORMAT", "RECORD_NAME",
    "RUN_FILES", "commit_plan", "forget_checkpoints", "read_record", "read_run_config",
    "record_checkpoint", "record_path", "temporary_target", "write_record",
]
