"""Batch bookkeeping for the recipes: find inputs, name outputs, shard them, keep records.

A batch run keeps one small JSON record per input under ``<output_dir>/records/`` and the
settings that decide every output in ``records/settings.json``. A file counts as done when
its record exists, its output exists and the input it was made from still has the size and
modification time the record names (the record is written after the output is renamed into
place), so an interrupted run is resumed by running it again: done files are skipped,
half-written outputs never exist (see :mod:`upsampler._atomic`), and the
summary is rebuilt from the records of every rank. A rerun with other settings is refused
(:meth:`RunRecords.claim`), and a path the records do not list is never written over
(:meth:`RunRecords.owned`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from upsampler.lengths import check_int
from upsampler.recipe_support.errors import RecipeError
from upsampler._atomic import write_json

AUDIO_SUFFIXES = (".wav", ".flac")
MEL_SUFFIXES = (".npy", ".pt")
INPUT_SUFFIXES = AUDIO_SUFFIXES + MEL_SUFFIXES
RECORDS_DIR = "records"
SETTINGS_FILE = "settings.json"
FAILED_SUFFIX = ".failed.json"
DONE_SUFFIX = ".json"
# Folders an input search never enters below its root: Hydra's default run roots and any
# folder that is itself a run (Hydra's ``.hydra`` or our records inside it).
RUN_ROOTS = ("outputs", "multirun")
RUN_MARKERS = (".hydra", RECORDS_DIR)
PATH_KEYS = ("output", "figure")  # record fields naming files the run wrote

Item = TypeVar("Item")


def is_run_folder(folder: Path) -> bool:
    """True for a folder holding ``.hydra/`` or ``records/``: an earlier run's output."""
    return any((folder / marker).is_dir() for marker in RUN_MARKERS)


def skip_reason(here: Path, name: str, root: Path, skipped: Path | None) -> str | None:
    """Why an input search does not enter ``here/name`` (None: it does)."""
    if name.startswith("."):
        return "hidden folder"
    if here == root and name in RUN_ROOTS:
        return f"top-level {name}/ holds earlier runs"
    if is_run_folder(here / name):
        markers = [marker for marker in RUN_MARKERS if (here / name / marker).is_dir()]
        return f"an earlier run's folder (holds {', '.join(m + '/' for m in markers)})"
    if skipped is not None and (here / name).resolve() == skipped:
        return "this run's own output folder"
    return None


def _walk(root: Path, skipped: Path | None,
          on_skip: Callable[[Path, str], None] | None = None) -> Iterator[Path]:
    """Files under ``root``, not entering hidden folders, run folders or ``skipped``;
    ``on_skip(folder, reason)`` is called for each folder left out."""
    for current, folders, files in os.walk(root):
        here = Path(current)
        kept = []
        for name in sorted(folders):
            reason = skip_reason(here, name, root, skipped)
            if reason is None:
                kept.append(name)
            elif on_skip is not None:
                on_skip(here / name, reason)
        folders[:] = kept
        yield from (here / name for name in files)


def find_inputs(
    path: str | os.PathLike[str], exclude: str | os.PathLike[str] | None = None,
    on_skip: Callable[[Path, str], None] | None = None,
) -> list[Path]:
    """The input files under ``path``: the file itself, or a folder's files, sorted.

    Hidden files and folders (``.git``, ``.venv``, temporary names), earlier runs
    (``outputs/`` and ``multirun/`` at the top, any folder holding ``.hydra/`` or
    ``records/``) and ``exclude`` (the run's own output folder) are not searched; each
    folder left out is passed to ``on_skip(folder, reason)`` (e.g. to log it). Raises
    ``FileNotFoundError`` for a missing path and ``ValueError`` for a file with an
    unsupported suffix or a folder without any supported file.
    """
    root = Path(path).expanduser()
    skipped = Path(exclude).resolve() if exclude is not None else None
    if not root.exists():
        raise FileNotFoundError(f"input={str(root)!r} does not exist")
    if root.is_file():
        if root.suffix.lower() not in INPUT_SUFFIXES:
            raise ValueError(
                f"input={str(root)!r} has suffix {root.suffix!r}; allowed: {list(INPUT_SUFFIXES)}"
            )
        return [root]
    if skipped is not None and root.resolve() == skipped:
        raise ValueError(f"input={str(root)!r} is the run's own output folder")
    found = sorted(
        p for p in _walk(root, skipped, on_skip)
        if p.suffix.lower() in INPUT_SUFFIXES and not p.name.startswith(".")
    )
    if not found:
        raise ValueError(
            f"input={str(root)!r} holds no file with a suffix in {list(INPUT_SUFFIXES)} "
            f"(hidden folders and earlier runs are not searched)"
        )
    return found


def output_names(inputs: Sequence[Path], root: str | os.PathLike[str]) -> list[str]:
    """One relative ``.wav`` name per input (its path under ``root``), all distinct.

    ``root`` is the input folder (or the input file itself), ``~`` expanded as
    :func:`find_inputs` does. Two inputs that would write the same wav (``a.npy`` and
    ``a.pt``) raise ``ValueError`` naming both.
    """
    base = Path(root).expanduser()
    base = base.parent if base.is_file() else base
    names: dict[str, Path] = {}
    for source in inputs:
        name = source.relative_to(base).with_suffix(".wav").as_posix()
        if name in names:
            raise ValueError(
                f"inputs {str(names[name])!r} and {str(source)!r} would both write {name!r}; "
                f"rename one of them"
            )
        names[name] = source
    return list(names)


def shard(items: Sequence[Item], rank: int, world_size: int) -> list[Item]:
    """Rank ``rank``'s share of ``items``: every ``world_size``-th item starting at ``rank``.

    Over ranks ``0 .. world_size - 1`` the shares are disjoint and cover ``items``.
    """
    check_int("world_size", world_size, 1)
    check_int("rank", rank, 0)
    if rank >= world_size:
        raise ValueError(
            f"rank must be in [0, {world_size - 1}] for world_size={world_size}, got {rank}"
        )
    return list(items[rank::world_size])


def input_identity(source: str | os.PathLike[str]) -> dict[str, int]:
    """Size and modification time of an input: a record is stale once either changes."""
    stat = Path(source).stat()
    return {"input_bytes": stat.st_size, "input_mtime_ns": stat.st_mtime_ns}


def settings_changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """``"key: old -> new"`` for every setting that differs (nested keys dotted)."""
    changes = []
    for key in sorted(set(old) | set(new)):
        before, after = old.get(key), new.get(key)
        if isinstance(before, Mapping) and isinstance(after, Mapping):
            changes += [f"{key}.{change}" for change in settings_changes(before, after)]
        elif before != after:
            changes.append(f"{key}: {before!r} -> {after!r}")
    return changes


class RunRecords:
    """Per-input records of a batch run under ``<output_dir>/records/``.

    ``name`` is an input's relative output name (``"sub/a.wav"``); its record is
    ``records/sub/a.wav.json`` when done, ``records/sub/a.wav.failed.json`` when it failed.
    """

    def __init__(self, output_dir: str | os.PathLike[str]) -> None:
        self.output_dir = Path(output_dir)
        self.directory = self.output_dir / RECORDS_DIR

    def _done_path(self, name: str) -> Path:
        return self.directory / f"{name}{DONE_SUFFIX}"

    def _failed_path(self, name: str) -> Path:
        return self.directory / f"{name}{FAILED_SUFFIX}"

    def _records(self) -> Iterator[dict[str, Any]]:
        if not self.directory.is_dir():
            return
        for path in self.directory.rglob(f"*{DONE_SUFFIX}"):
            if path.parent == self.directory and path.name == SETTINGS_FILE:
                continue
            try:
                yield json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue  # an unreadable record owns nothing

    def claim(self, settings: Mapping[str, Any], summary_name: str) -> None:
        """Make the folder this run's, or raise ``RecipeError`` naming what is in the way.

        A folder whose records were made with other ``settings`` is refused with every
        change listed; so is one holding ``summary_name`` or records but no settings
        (not written by this recipe). A fresh folder gets ``records/settings.json``.
        """
        stored = self.directory / SETTINGS_FILE
        folder = str(self.output_dir)
        if stored.is_file():
            old = json.loads(stored.read_text(encoding="utf-8"))
            changes = settings_changes(old, settings)
            if changes:
                raise RecipeError(
                    f"output_dir {folder!r} holds results made with other settings ("
                    + "; ".join(changes) + "); choose a new hydra.run.dir (or output_dir) "
                    f"or delete {folder!r} to redo them"
                )
            return
        if (self.output_dir / summary_name).exists() or any(True for _ in self._records()):
            raise RecipeError(
                f"output_dir {folder!r} holds results without {RECORDS_DIR}/{SETTINGS_FILE} "
                f"(another program's, or an older version's); choose a new hydra.run.dir"
            )
        write_json(stored, dict(settings))

    def owned(self) -> set[str]:
        """Relative paths (outputs, figures) the records say this folder's runs wrote."""
        owned = set()
        for record in self._records():
            if "error" in record:  # a failure: the files written before it failed
                owned.update(map(str, record.get("wrote", [])))
            else:
                owned.update(str(record[key]) for key in PATH_KEYS if record.get(key))
        return owned

    def is_done(self, name: str, source: str | os.PathLike[str] | None = None) -> bool:
        """True when ``name`` finished earlier, its output exists and ``source`` is unchanged."""
        path = self._done_path(name)
        if not (path.is_file() and (self.output_dir / name).is_file()):
            return False
        if source is None:
            return True
        record = json.loads(path.read_text(encoding="utf-8"))
        identity = input_identity(source)
        return all(record.get(key) == value for key, value in identity.items())

    def mark_done(self, name: str, record: dict[str, Any]) -> None:
        """Store the record of a finished input (call after its output is in place)."""
        write_json(self._done_path(name), record)
        self._failed_path(name).unlink(missing_ok=True)

    def mark_failed(self, name: str, source: str, error: str, wrote: Sequence[str] = ()) -> None:
        """Store a one-line failure for ``name``; a later successful run removes it.

        ``wrote`` lists the files already written for it (they stay owned by the run).
        """
        record = {"input": source, "output": name, "error": error, "wrote": list(wrote)}
        self._done_path(name).unlink(missing_ok=True)
        write_json(self._failed_path(name), record)

    def summary(self, names: Sequence[str]) -> dict[str, Any]:
        """The records of ``names`` in order: ``files`` (done), ``failures`` and ``missing``."""
        files, failures, missing = [], [], []
        for name in names:
            if self._done_path(name).is_file():
                files.append(json.loads(self._done_path(name).read_text(encoding="utf-8")))
            elif self._failed_path(name).is_file():
                failures.append(json.loads(self._failed_path(name).read_text(encoding="utf-8")))
            else:
                missing.append(name)
        return {"files": files, "failures": failures, "missing": missing}


__all__ = [
    "AUDIO_SUFFIXES",
    "INPUT_SUFFIXES",
    "MEL_SUFFIXES",
    "RunRecords",
    "find_inputs",
    "input_identity",
    "is_run_folder",
    "output_names",
    "settings_changes",
    "shard",
]
