"""How a recipe run ends: one log line and a non-zero exit status instead of a traceback."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import Any, TypeVar

Config = TypeVar("Config")
EXIT_FAILURE = 1


class RecipeError(Exception):
    """A problem that stops a whole recipe run (bad path, config, checkpoint): one log line."""


class FilesFailed(RecipeError):
    """Some inputs of a batch run failed; the run wrote everything else and its summary."""


def one_line(error: BaseException) -> str:
    """``"ErrorType: message"`` on a single line, for logs and summaries without tracebacks."""
    message = " ".join(str(error).split())
    return f"{type(error).__name__}: {message}" if message else type(error).__name__


def run_or_exit(run: Callable[[Config], Any], cfg: Config, log: logging.Logger) -> Any:
    """Call ``run(cfg)``; a ``RecipeError`` is logged as one line and exits with status 1.

    A ``RecipeError`` raised while writing the error itself (a full disk) still exits 1.
    """
    try:
        return run(cfg)
    except RecipeError as error:
        log.error("%s", error)
        sys.exit(EXIT_FAILURE)


__all__ = ["EXIT_FAILURE", "FilesFailed", "RecipeError", "one_line", "run_or_exit"]
