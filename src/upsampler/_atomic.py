"""The one way the package writes a file: a unique temporary name beside it, then a rename.

``atomic_write(path, write)`` calls ``write(temporary_path)`` and renames the result onto
``path`` with ``os.replace``, so a reader never sees a half-written file and an interrupted
write leaves at most a temporary file. Temporary names are ``.<name>.partial-<pid>-<random>``
(plus the target's suffix, so writers that pick a format from it still work): two
processes writing the same target never share one, and ``remove_stale_temporaries``
recognises them. They are created with mode ``0o666`` minus the umask (0644 under the
usual 022), as ``open`` would create the target, not the 0600 of ``tempfile.mkstemp``.
Only the standard library is imported here. Private to the package: its writers
(``upsampler.audio.save_audio``, ``upsampler.export``, the training checkpoints, the
recipes' records and ``upsampler.analysis.figures.save_png``) all go through it.

A write that fails for a file-system reason (a full disk, a quota, a read-only or
unwritable folder, a folder path through a regular file) raises :class:`WriteError`, an
``OSError`` whose ``str()`` is the one line ``cannot write '<path>': no space left on
device`` (or ``permission denied``, ...), with the temporary file removed. Writers that
hide the OS error (``torch.save`` to a path says ``basic_ios::clear: iostream error``,
libsndfile says ``System error.``) raise ``RuntimeError``; after one of those the folder
is checked (read-only flag, free space, then a small probe write and ``fsync``) and a
file-system cause found there is reported the same way.
"""

from __future__ import annotations

import errno
import json
import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any, Union

PathLike = Union[str, "os.PathLike[str]"]
TEMP_MARKER = ".partial-"
CREATE_MODE = 0o666  # the umask is applied by the OS, as for any new file
RANDOM_HEX_BYTES = 4
PROBE_BYTES = 64 * 1024  # written (and fsync'ed) after an opaque failure to find its cause
FULL_DISK_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS})
REASONS = {
    errno.ENOSPC: "no space left on device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EROFS: "read-only file system",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.ENOTDIR: "not a directory",
    errno.EEXIST: "not a directory",  # mkdir(exist_ok=True) of a path that is a regular file
}


class WriteError(OSError):
    """A file could not be written; ``str()`` is ``cannot write '<path>': <reason>``.

    ``errno`` is the OS error number (``ENOSPC``, ``EDQUOT``, ``EACCES``, ``EROFS``, ...),
    ``filename`` the path that was to be written, ``strerror`` the reason in words.
    """

    def __init__(self, path: PathLike, number: int, reason: str | None = None) -> None:
        super().__init__(number, reason or describe(number, Path(path)), os.fspath(path))

    def __str__(self) -> str:
        return f"cannot write {str(self.filename)!r}: {self.strerror}"

    @property
    def disk_full(self) -> bool:
        """True for a full disk, an exhausted quota or a read-only file system: every
        further write to that folder fails too."""
        return self.errno in FULL_DISK_ERRNOS


def describe(number: int, path: Path) -> str:
    """The reason in words for errno ``number`` while writing ``path``; a folder path
    through a regular file names that file."""
    if number in (errno.ENOTDIR, errno.EEXIST):
        for ancestor in path.parents:
            if ancestor.exists():
                if not ancestor.is_dir():
                    return f"{str(ancestor)!r} is a file, not a folder"
                break
    return REASONS.get(number) or os.strerror(number).lower()


def os_cause(error: BaseException) -> OSError | None:
    """The first ``OSError`` with an errno in ``error``'s cause / context chain."""
    seen: set[int] = set()
    link: BaseException | None = error
    while link is not None and id(link) not in seen:
        seen.add(id(link))
        if isinstance(link, OSError) and link.errno is not None:
            return link
        link = link.__cause__ or link.__context__
    return None


def folder_problem(folder: Path) -> int | None:
    """The errno a write into ``folder`` fails with now (read-only, full, over quota,
    unwritable), None when a probe write of ``PROBE_BYTES`` and its ``fsync`` succeed."""
    try:
        stats = os.statvfs(folder)
    except OSError as error:
        return error.errno
    if stats.f_flag & os.ST_RDONLY:
        return errno.EROFS
    if stats.f_bavail == 0:
        return errno.ENOSPC
    probe = folder / f".probe{TEMP_MARKER}{os.getpid()}-{secrets.token_hex(RANDOM_HEX_BYTES)}"
    try:
        descriptor = os.open(probe, os.O_CREAT | os.O_EXCL | os.O_WRONLY, CREATE_MODE)
        try:
            os.write(descriptor, bytes(PROBE_BYTES))
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
    except OSError as error:
        return error.errno
    finally:
        try:
            probe.unlink(missing_ok=True)
        except OSError:
            pass
    return None


def write_error(path: PathLike, error: BaseException) -> WriteError | None:
    """The :class:`WriteError` that ``error``, raised while writing ``path``, stands for;
    None when it is no file-system problem (the caller re-raises ``error``).

    An ``OSError`` in the chain gives its errno; a ``RuntimeError`` without one (torch's
    and libsndfile's opaque I/O errors) is followed by :func:`folder_problem`.
    """
    if isinstance(error, WriteError):
        return error
    cause = os_cause(error)
    if cause is not None:
        return WriteError(path, int(cause.errno))  # type: ignore[arg-type]
    if isinstance(error, RuntimeError):
        number = folder_problem(Path(path).parent)
        if number is not None:
            return WriteError(path, number)
    return None


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

    On any exception (or interrupt) the temporary file is removed and the error re-raised,
    a file-system failure (creating the folder or the temporary file, writing, renaming)
    as :class:`WriteError`; an existing ``path`` is left as it was.
    """
    target = Path(path)
    try:
        temp = temporary_path(target)
    except OSError as error:
        raise (write_error(target, error) or error) from error
    try:
        write(temp)
        os.replace(temp, target)
    except BaseException as error:
        # diagnose while the temporary file still holds its bytes: removing it first frees
        # the space the failed write ran out of
        converted = write_error(target, error) if isinstance(error, Exception) else None
        try:
            temp.unlink(missing_ok=True)
        except OSError:
            pass
        if converted is None or converted is error:
            raise
        raise converted from error
    return target


def atomic_write_text(path: PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) atomically to ``path``."""
    return atomic_write(path, lambda temp: temp.write_text(text, encoding="utf-8"))


def write_json(path: PathLike, data: Any) -> Path:
    """``atomic_write_text`` of ``data`` as indented JSON."""
    return atomic_write_text(path, json.dumps(data, indent=2, sort_keys=False) + "\n")


def append_text(path: PathLike, text: str) -> None:
    """Append ``text`` (UTF-8) to ``path``; a file-system failure is a :class:`WriteError`
    (an append is not atomic: a failed one may leave a torn last line)."""
    try:
        with Path(path).open("a", encoding="utf-8") as stream:
            stream.write(text)
    except OSError as error:
        raise (write_error(path, error) or error) from error


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
    "FULL_DISK_ERRNOS",
    "WriteError",
    "append_text",
    "atomic_write",
    "atomic_write_text",
    "is_temporary",
    "remove_stale_temporaries",
    "temporary_path",
    "write_error",
    "write_json",
]
