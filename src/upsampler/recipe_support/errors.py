"""How a recipe run ends: one log line and a non-zero exit status instead of a traceback."""

from __future__ import annotations

import logging
import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from upsampler._atomic import WriteError

Config = TypeVar("Config")
EXIT_FAILURE = 1
RUN_DIR_KEY = "hydra.run.dir"
HYDRA_FOLDER, LOG_SUFFIX = ".hydra", ".log"  # what Hydra writes into a run folder


class RecipeError(Exception):
    """A problem that stops a whole recipe run (bad path, config, checkpoint): one log line."""


def printable(text: Any) -> str:
    """``str(text)`` that any UTF-8 stream can write: a file name's undecodable bytes (held
    as surrogates, ``"caf\\udce9"``) are shown as ``\\xe9``, other lone surrogates as
    ``\\udXXX``."""
    text = os.fspath(text) if isinstance(text, os.PathLike) else text
    text = os.fsdecode(text) if isinstance(text, bytes) else str(text)
    try:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:  # a surrogate that is no escaped byte
        return text.encode("utf-8", "backslashreplace").decode("utf-8")


PRINTABLE_ARGS = (str, bytes, os.PathLike, BaseException)


class PrintableLogFilter(logging.Filter):
    """Makes a record's message and its string, path and error arguments :func:`printable`, so a
    file name that is not valid UTF-8 cannot crash a log handler ("--- Logging error ---")."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = printable(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(printable(arg) if isinstance(arg, PRINTABLE_ARGS) else arg
                                for arg in record.args)
        return True


def one_line(error: BaseException) -> str:
    """``"ErrorType: message"`` on a single, :func:`printable` line, for logs and summaries
    without tracebacks; a :class:`~upsampler._atomic.WriteError` is its own message
    (``cannot write '<path>': no space left on device``)."""
    message = " ".join(printable(error).split())
    if isinstance(error, WriteError):
        return message
    return f"{type(error).__name__}: {message}" if message else type(error).__name__


def run_or_exit(run: Callable[[Config], Any], cfg: Config, log: logging.Logger) -> Any:
    """Call ``run(cfg)``; a ``RecipeError`` or a ``WriteError`` (a full disk, an unwritable
    folder: ``cannot write '<path>': ...``) is logged as one line and exits with status 1.

    A ``RecipeError`` raised while writing the error itself (a full disk) still exits 1.
    """
    try:
        return run(cfg)
    except (RecipeError, WriteError) as error:
        log.error("%s", error if isinstance(error, RecipeError) else one_line(error))
        sys.exit(EXIT_FAILURE)


def run_dir_override(argv: list[str]) -> str | None:
    """The value of ``hydra.run.dir=DIR`` on the command line (the last one), else None.

    None too for an empty value or one with an interpolation (Hydra resolves those).
    """
    found = None
    for argument in argv[1:]:
        key, _, value = argument.partition("=")
        if key.lstrip("+") == RUN_DIR_KEY:
            found = value if value and "$" not in value else None
    return found


def check_run_dir_override(argv: list[str]) -> list[Path]:
    """Exit with one line if ``hydra.run.dir=DIR`` on the command line cannot be created.

    Hydra makes that folder (for its log) before the recipe runs and reports a failure
    there as a traceback; recipes call this first, with ``sys.argv``. Returns the folders
    it created, outermost first (empty when the folder existed or none was given), for
    :func:`discard_unused_run_dir`.
    """
    value = run_dir_override(argv)
    if value is None:
        return []
    folder = Path(value).expanduser().absolute()
    created = [path for path in [folder, *folder.parents] if not path.exists()][::-1]
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        print(f"{RUN_DIR_KEY}={value!r} cannot be created ({one_line(error)}); choose a "
              f"writable folder", file=sys.stderr)
        sys.exit(EXIT_FAILURE)
    return created


def discard_unused_run_dir(created: list[Path]) -> None:
    """Remove a run folder made for this run that holds only Hydra's ``.hydra/`` and logs.

    ``created`` is what :func:`check_run_dir_override` made. Called when a run is refused,
    so a refused run leaves no folder behind (a ``.hydra/`` inside an input tree would make
    later runs skip that folder as an earlier run). A folder holding anything else is
    left as it is.
    """
    if not created:
        return
    run_dir = created[-1]
    try:
        entries = list(run_dir.iterdir())
    except OSError:
        return
    if any(not (entry.name == HYDRA_FOLDER and entry.is_dir())
           and not (entry.suffix == LOG_SUFFIX and entry.is_file()) for entry in entries):
        return
    for entry in entries:
        if entry.is_dir():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
    for folder in reversed(created):
        try:
            folder.rmdir()
        except OSError:
            return


def main_leaving_no_refused_run_dir(main: Callable[[], None], argv: list[str]) -> None:
    """Run a Hydra ``main`` after :func:`check_run_dir_override`; a run that exits non-zero
    removes the run folder made for it when it holds only Hydra's files
    (:func:`discard_unused_run_dir`)."""
    created = check_run_dir_override(argv)  # Hydra's own mkdir failure is a traceback
    try:
        main()
    except SystemExit as ending:
        if ending.code not in (0, None):
            discard_unused_run_dir(created)
        raise


__all__ = [
    "EXIT_FAILURE",
    "PrintableLogFilter",
    "RecipeError",
    "check_run_dir_override",
    "discard_unused_run_dir",
    "main_leaving_no_refused_run_dir",
    "one_line",
    "printable",
    "run_dir_override",
    "run_or_exit",
]
