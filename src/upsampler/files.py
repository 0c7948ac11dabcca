"""The one way the package writes a file: a unique temporary name beside it, then a rename.

``atomic_write(path, write)`` calls ``write(temporary_path)`` and renames the result onto
``path`` with ``os.replace``, so a reader never sees a half-written file and an interrupted
write leaves at most a temporary file. Temporary names are ``.<name>.partial-<pid>-<random>``
(plus the target's suffix, so writers that pick a format from it still work): two
processes writing the same target never share one, and ``remove_stale_temporaries``
recognises them. They are created with mode ``0o666`` minus the umask (0644 under the
usual 022), as ``open`` would create the target, not the 0600 of ``tempfile.mkstemp``.
Only the standard library is imported here; the library's own savers
(``upsampler.audio.save_audio``, ``upsampler.export``) use it too.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any, Union

PathLike = Union[str, "os.PathLike[str]"]
TEMP_MARKER = ".partial-"
CREATE_MODE = 0o666  # the umask is applied by the OS, as for any new file
FIGURE_DPI = 100  # recipe figures: 8 x 5 inches -> 800 x 500 pixels
RANDOM_HEX_BYTES = 4


def temporary_path(target: Path) -> Path:
    """A fresh, empty file beside ``target`` with a name no other writer uses."""
    target.parent.mkdir(parents=True, exist_ok=True)
    while True:
        token = f"{os.getpid()}-{secrets.token_hex(RANDOM_HEX_BYTES)}"
        temp = target.with_name(f".{target.name}{TEMP_MARKER}{token}{target.suffix}")
        try:
            os.close(os.open(temp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, CREATE_MODE))
        except FileExistsError:
            continue
        return temp


def atomic_write(path: PathLike, write: Callable[[Path], Any]) -> Path:
    """``write(temp)`` to a temporary file beside ``path``, then rename it onto ``path``.

    On any exception (or interrupt) the temporary file is removed and the error re-raised;
    an existing ``path`` is left as it was.
    """
    target = Path(path)
    temp = temporary_path(target)
    try:
        write(temp)
        os.replace(temp, target)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return target


def atomic_write_text(path: PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) atomically to ``path``."""
    return atomic_write(path, lambda temp: temp.write_text(text, encoding="utf-8"))


def write_json(path: PathLike, data: Any) -> Path:
    """``atomic_write_text`` of ``data`` as indented JSON."""
    return atomic_write_text(path, json.dumps(data, indent=2, sort_keys=False) + "\n")


def save_png(figure: Any, path: PathLike, dpi: int = FIGURE_DPI) -> Path:
    """Save a matplotlib ``figure`` as PNG atomically to ``path``."""
    return atomic_write(path, lambda temp: figure.savefig(temp, format="png", dpi=dpi))


def is_temporary(path: Path) -> bool:
    """True for a name made by :func:`temporary_path`."""
    return path.name.startswith(".") and TEMP_MARKER in path.name


def remove_stale_temporaries(folder: PathLike) -> list[Path]:
    """Delete every temporary file under ``folder`` (call only while no writer runs there)."""
    removed = []
    for temp in Path(folder).rglob(f".*{TEMP_MARKER}*"):
        if temp.is_file() and is_temporary(temp):
            temp.unlink(missing_ok=True)
            removed.append(temp)
    return removed


__all__ = [
    "atomic_write",
    "atomic_write_text",
    "is_temporary",
    "remove_stale_temporaries",
    "save_png",
    "temporary_path",
    "write_json",
]
