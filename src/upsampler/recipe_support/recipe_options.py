"""The checks a recipe runs before any work: its options, then the folder it writes into.

Each of vocode, evaluate, analyze, compare, benchmark, reference and stream calls its
``check_<recipe>_options(cfg)`` first: the composed config is resolved and every option,
nested groups and list entries included, is checked against the recipe's rule table
(:mod:`.recipe_rules`, :mod:`.benchmark_rules`; :mod:`.option_rules` walks it), so the first
value its rule does not allow stops the run with one ``RecipeError`` line naming the
option, the value and what is allowed. :func:`check_writable_dir` then makes sure the
folder a run writes into can be created and written; :func:`check_writable_on_main` does
that once for every rank of a torchrun launch.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from upsampler.recipe_support.benchmark_rules import BENCHMARK_RULES, QUICK, REPS_GROUPS
from upsampler.recipe_support.distributed import ProcessContext
from upsampler.recipe_support.errors import RecipeError, one_line
from upsampler.recipe_support.option_rules import check_rules, resolve
from upsampler.recipe_support.recipe_rules import (
    ANALYZE_RULES,
    COMPARE_RULES,
    EVALUATE_RULES,
    REFERENCE_RULES,
    STREAM_RULES,
    VOCODE_RULES,
)


# -- one check per recipe ---------------------------------------------------------------------

def check_vocode_options(cfg: DictConfig) -> None:
    """Every option of configs/vocode.yaml (and its audio/upsampler/model groups)."""
    check_rules(resolve(cfg, "vocode"), VOCODE_RULES)


def check_evaluate_options(cfg: DictConfig) -> None:
    """Every option of configs/evaluate.yaml, ``table.*`` included."""
    check_rules(resolve(cfg, "evaluate"), EVALUATE_RULES)


def check_analyze_options(cfg: DictConfig) -> None:
    """Every option of configs/analyze.yaml."""
    check_rules(resolve(cfg, "analyze"), ANALYZE_RULES)


def check_compare_options(cfg: DictConfig) -> None:
    """``runs`` and ``output_dir`` of configs/compare.yaml."""
    check_rules(resolve(cfg, "compare"), COMPARE_RULES)


def check_reference_options(cfg: DictConfig) -> None:
    """Every option of configs/reference.yaml, each of ``reports`` included."""
    check_rules(resolve(cfg, "reference"), REFERENCE_RULES)


def check_stream_options(cfg: DictConfig) -> None:
    """Every option of configs/stream.yaml, ``docs.*`` included."""
    check_rules(resolve(cfg, "stream"), STREAM_RULES)


def check_benchmark_options(cfg: DictConfig) -> None:
    """Every option of every section of configs/benchmark.yaml, enabled or not, and
    ``quick_settings`` (each by the rule of the option it replaces); in every reps group
    ``min_reps <= max_reps``, also once ``quick_settings`` is merged; a ``cuda`` device
    needs CUDA."""
    values = resolve(cfg, "benchmark")
    check_rules(values, BENCHMARK_RULES, quick_prefix=QUICK)
    if values["quick"]:
        values = resolve(OmegaConf.merge(cfg, cfg.quick_settings), "benchmark")
        check_rules(values, BENCHMARK_RULES, quick_prefix=QUICK)
    for group in REPS_GROUPS:
        node: Any = values
        for key in group.split("."):
            node = node[key]
        if node["min_reps"] > node["max_reps"]:
            merged = " (quick_settings merged)" if values["quick"] else ""
            raise RecipeError(f"{group}.min_reps must be <= {group}.max_reps{merged}, got "
                              f"{node['min_reps']} > {node['max_reps']}")
    if torch.device(values["device"]).type == "cuda" and not torch.cuda.is_available():
        raise RecipeError(f"device must be cpu here: CUDA is not available, got "
                          f"{values['device']!r}")


# -- the folder a run writes into -------------------------------------------------------------

def check_writable_dir(folder: str | Path, option: str) -> Path:
    """Check that ``folder`` can be created and written: make it (and its parents), write and
    remove a file in it, then remove the folders this made (the run makes them again when
    it writes, so a run refused later leaves no empty folder behind); return it.

    ``RecipeError`` naming ``option`` and the path when that fails: a path below a regular
    file, a read-only file system, no permission.
    """
    path = Path(folder).expanduser()
    absolute = path.absolute()
    created = [parent for parent in [absolute, *absolute.parents] if not parent.exists()][::-1]
    try:
        absolute.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=absolute, prefix=".writable-", delete=True):
            pass
    except OSError as error:
        raise RecipeError(f"{option} {str(path)!r} is not writable ({one_line(error)}); "
                          f"choose a writable folder") from error
    finally:
        for made in reversed(created):
            try:
                made.rmdir()
            except OSError:
                break
    return path


def check_writable_on_main(ctx: ProcessContext, folder: str | Path, option: str) -> None:
    """:func:`check_writable_dir` on rank 0, its outcome shared, so every rank of a torchrun
    launch stops with the same one line (or none does)."""
    problem = None
    if ctx.is_main:
        try:
            check_writable_dir(folder, option)
        except RecipeError as error:
            problem = str(error)
    problem = ctx.broadcast(problem)
    if problem is not None:
        raise RecipeError(problem)


__all__ = [
    "check_analyze_options", "check_benchmark_options", "check_compare_options",
    "check_evaluate_options", "check_reference_options", "check_stream_options",
    "check_vocode_options",
    "check_writable_dir", "check_writable_on_main",
]
