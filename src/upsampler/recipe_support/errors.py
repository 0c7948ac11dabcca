"""How a recipe run ends: one log line and a non-zero exit status instead of a traceback."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

Config = TypeVar("Config")
EXIT_FAILURE = 1
RUN_DIR_KEY = "hydra.run.dir"


class RecipeError(Exception):
    """A problem that stops a whole recipe run (bad path, config, checkpoint): one log line."""


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


def check_run_dir_override(argv: list[str]) -> None:
    """Exit with one line if ``hydra.run.dir=DIR`` on the command line cannot be created.

    Hydra makes that folder (for its log) before the recipe runs and reports a failure
    there as a traceback; recipes call this first, with ``sys.argv``.
    """
    for argument in argv[1:]:
        key, _, value = argument.partition("=")
        if key.lstrip("+") != RUN_DIR_KEY or not value or "$" in value:
            continue  # interpolations are resolved by Hydra, not here
        try:
            Path(value).expanduser().mkdir(parents=True, exist_ok=True)
        except OSError as error:
            print(f"{RUN_DIR_KEY}={value!r} cannot be created ({one_line(error)}); choose a "
                  f"writable folder", file=sys.stderr)
            sys.exit(EXIT_FAILURE)


__all__ = [
    "EXIT_FAILURE",
    "RecipeError",
    "check_run_dir_override",
    "one_line",
    "run_or_exit",
]
