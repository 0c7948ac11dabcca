"""Batch file work for the recipes: find inputs, shard them over ranks, write atomically, summarise.

A batch run keeps one small JSON record per finished input under ``<output_dir>/records/``.
A file counts as done when its record exists (the record is written after the output
file is renamed into place), so an interrupted run is resumed by running it again: done
files are skipped, half-written outputs never exist (everything goes to a temporary name
first, then ``os.replace``), and the summary is rebuilt from the records of every rank.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from upsampler.lengths import check_int

AUDIO_SUFFIXES = (".wav", ".flac")
MEL_SUFFIXES = (".npy", ".pt")
INPUT_SUFFIXES = AUDIO_SUFFIXES + MEL_SUFFIXES
RECORDS_DIR = "records"
FAILED_SUFFIX = ".failed.json"
DONE_SUFFIX = ".json"
FIGURE_DPI = 100  # recipe figures: 8 x 5 inches -> 800 x 500 pixels

Item = TypeVar("Item")
Config = TypeVar("Config")


class RecipeError(Exception):
    """A problem that stops a whole recipe run (bad path, config, checkpoint): one log line."""


def run_or_exit(run: Callable[[Config], Any], cfg: Config, log: logging.Logger) -> None:
    """Call ``run(cfg)``; a ``RecipeError`` is logged as one line and exits with status 1."""
    try:
        run(cfg)
    except RecipeError as error:
        log.error("%s", error)
        sys.exit(1)


def find_inputs(
    path: str | os.PathLike[str], exclude: str | os.PathLike[str] | None = None
) -> list[Path]:
    """The input files under ``path``: the file itself, or a folder's files, sorted.

    Hidden files (temporary names) and anything under ``exclude`` (the run's own output
    folder, when it lies inside the input folder) are left out. Raises
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
    found = sorted(
        p for p in root.rglob("*")
        if p.is_file() and p.suffix.lower() in INPUT_SUFFIXES and not p.name.startswith(".")
        and (skipped is None or skipped not in p.resolve().parents)
    )
    if not found:
        raise ValueError(
            f"input={str(root)!r} holds no file with a suffix in {list(INPUT_SUFFIXES)}"
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


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` to a temporary file beside ``path``, then rename it into place."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
        os.replace(temp, target)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    return target


def write_json(path: str | os.PathLike[str], data: Any) -> Path:
    """``atomic_write_text`` of ``data`` as indented JSON."""
    return atomic_write_text(path, json.dumps(data, indent=2, sort_keys=False) + "\n")


def save_png(figure: Any, path: str | os.PathLike[str], dpi: int = FIGURE_DPI) -> Path:
    """Save a matplotlib ``figure`` as PNG to a temporary name beside ``path``, then rename."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    temp = target.with_name(f".{target.name}.tmp")
    try:
        figure.savefig(temp, format="png", dpi=dpi)
        os.replace(temp, target)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return target


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

    def is_done(self, name: str) -> bool:
        """True when ``name`` finished in this or an earlier run and its output still exists."""
        return self._done_path(name).is_file() and (self.output_dir / name).is_file()

    def mark_done(self, name: str, record: dict[str, Any]) -> None:
        """Store the record of a finished input (call after its output is in place)."""
        write_json(self._done_path(name), record)
        self._failed_path(name).unlink(missing_ok=True)

    def mark_failed(self, name: str, source: str, error: str) -> None:
        """Store a one-line failure for ``name``; a later successful run removes it."""
        write_json(self._failed_path(name), {"input": source, "output": name, "error": error})

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


def one_line(error: BaseException) -> str:
    """``"ErrorType: message"`` on a single line, for logs and summaries without tracebacks."""
    message = " ".join(str(error).split())
    return f"{type(error).__name__}: {message}" if message else type(error).__name__


__all__ = [
    "AUDIO_SUFFIXES",
    "INPUT_SUFFIXES",
    "MEL_SUFFIXES",
    "RecipeError",
    "RunRecords",
    "atomic_write_text",
    "find_inputs",
    "one_line",
    "output_names",
    "run_or_exit",
    "save_png",
    "shard",
    "write_json",
]
