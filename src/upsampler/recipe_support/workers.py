"""Run a recipe's function in worker processes (spawned: each imports the recipe afresh).

Recipes are scripts, not a package, so a worker cannot import one by module name; it loads
the recipe file by path instead and calls the named function there. Used by the study to
train several runs at once, one per core.
"""

from __future__ import annotations

import functools
import importlib.util
import logging
import multiprocessing
import sys
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from types import ModuleType
from typing import Any

LOG_FORMAT = "[%(asctime)s][%(name)s][%(levelname)s] - %(message)s"


@functools.cache
def load_script(path: str) -> ModuleType:
    """The Python file at ``path`` as a module named ``recipe_<stem>`` (loaded once)."""
    name = f"recipe_{Path(path).stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ValueError(f"path must be a Python file, got {path!r}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def _start_worker(level: int) -> None:
    logging.basicConfig(level=level, format=LOG_FORMAT)  # Hydra configured the parent only


def _call(path: str, function: str, arguments: Sequence[Any]) -> Any:
    return getattr(load_script(path), function)(*arguments)


def map_in_processes(path: str | Path, function: str, argument_lists: Sequence[Sequence[Any]],
                     workers: int) -> list[Any]:
    """``[function(*args) for args in argument_lists]`` run ``workers`` at a time.

    ``function`` is looked up in the file at ``path`` inside each spawned worker; the
    arguments must pickle. A worker takes the next item in order when it finishes one. The
    first error raised in a worker is raised here once the items before it are done.
    """
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be an integer >= 1, got {workers!r}")
    level = logging.getLogger().getEffectiveLevel()
    with ProcessPoolExecutor(workers, multiprocessing.get_context("spawn"),
                             initializer=_start_worker, initargs=(level,)) as pool:
        futures = [pool.submit(_call, str(path), function, tuple(arguments))
                   for arguments in argument_lists]
        return [future.result() for future in futures]


__all__ = ["load_script", "map_in_processes"]
