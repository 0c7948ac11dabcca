"""The checks of every option of vocode, evaluate, analyze, compare, benchmark and reference.

Each recipe's ``run()`` calls its ``check_<recipe>_options(cfg)`` first: the composed config
is resolved and walked (nested groups such as ``table.*`` and benchmark's sections too, and
the entries of lists of mappings such as ``extra_layers``), and the first option whose
value its :class:`~upsampler.recipe_support.train_options.Rule` does not allow stops the run
with one ``RecipeError`` line naming the option, the value and what is allowed. Rules are
keyed by dotted path; ``*`` stands for any one key or list index (``extra_layers.*.stride``).
A recipe's ``audio``, ``upsampler`` and ``model`` groups get train's rules
(:data:`~upsampler.recipe_support.train_options.RULES`, ``MODEL_RULES``), so
``audio.hop_length=abc`` or ``model.upsample_rates=[]`` is one line before anything is built.
:func:`check_writable_dir` then makes sure the folder a run writes into can be created and
written.
"""

from __future__ import annotations

import functools
import re
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import MissingMandatoryValue

from upsampler.models.bigvgan import PRESETS as BIGVGAN_PRESETS
from upsampler.models.hifigan import PRESETS as HIFIGAN_PRESETS
from upsampler.recipe_support.distributed import ProcessContext
from upsampler.recipe_support.errors import RecipeError, one_line
from upsampler.recipe_support.train_options import (
    BOOLEAN,
    MODEL_RULES,
    NON_NEGATIVE_INT,
    NON_NEGATIVE_NUMBER,
    POSITIVE_INT,
    POSITIVE_INTS,
    POSITIVE_NUMBER,
    RULES as TRAIN_RULES,
    TEXT,
    Rule,
    _is_number,
    is_spec,
    _or_null,
)

MAPPING = Rule("a group of options (key: value)", lambda v: isinstance(v, Mapping))
NON_EMPTY_MAPPING = Rule("a non-empty group of options (key: value)",
                         lambda v: isinstance(v, Mapping) and len(v) > 0)
ANY_TEXT = Rule("a string", lambda v: isinstance(v, str))
PATH_OR_NULL = _or_null(Rule("a non-empty path", lambda v: isinstance(v, str) and v.strip() != ""))
PATH = Rule("a non-empty path", lambda v: isinstance(v, str) and v.strip() != "")
THREADS_OR_NULL = _or_null(POSITIVE_INT)
SEED = NON_NEGATIVE_INT
SEEDS = Rule("a non-empty list of integers >= 0",
             lambda v: isinstance(v, list) and len(v) > 0 and all(SEED.accepts(x) for x in v))
TEXTS = Rule("a non-empty list of non-empty strings",
             lambda v: isinstance(v, list) and len(v) > 0 and all(TEXT.accepts(x) for x in v))
POSITIVE_NUMBERS = Rule("a non-empty list of positive numbers",
                        lambda v: isinstance(v, list) and len(v) > 0
                        and all(POSITIVE_NUMBER.accepts(x) for x in v))
NON_ZERO_NUMBERS = Rule("a non-empty list of non-zero numbers",
                        lambda v: isinstance(v, list) and len(v) > 0
                        and all(_is_number(x) and x != 0 for x in v))


DEVICE_PATTERN = re.compile(r"cpu|cuda(:\d+)?")  # what the recipes' process set-up runs on
DEVICE = Rule("'cpu', 'cuda' or 'cuda:N'",
              lambda v: isinstance(v, str) and DEVICE_PATTERN.fullmatch(v) is not None)


SOME_POSITIVE_INTS = Rule("a list of positive integers (may be empty)",
                         lambda v: isinstance(v, list) and all(POSITIVE_INT.accepts(x) for x in v))


def names_among(names: Any, non_empty: bool = True) -> Rule:
    """A list of names among ``names`` (non-empty unless ``non_empty`` is false)."""
    allowed = sorted(names)
    words = "a non-empty list" if non_empty else "a list (may be empty)"
    return Rule(f"{words} of names among {allowed}",
                lambda v: isinstance(v, list) and (len(v) > 0 or not non_empty)
                and all(isinstance(x, str) and x in allowed for x in v))


def one_of(names: Any) -> Rule:
    allowed = sorted(names)
    return Rule(f"one of {allowed}", lambda v: isinstance(v, str) and v in allowed)


def mappings_with(keys: tuple[str, ...], non_empty: bool = True) -> Rule:
    """A list of mappings holding exactly ``keys`` (each value has its own ``*`` rule)."""
    words = "a non-empty list" if non_empty else "a list (may be empty)"
    return Rule(f"{words} of {{{', '.join(keys)}}}",
                lambda v: isinstance(v, list) and (len(v) > 0 or not non_empty)
                and all(isinstance(x, Mapping) and set(x) == set(keys) for x in v))


# -- shared pieces ---------------------------------------------------------------------------

def _groups() -> dict[str, Rule]:
    """``audio.*`` and ``upsampler.kind`` as train checks them (``model.*``: MODEL_RULES)."""
    rules = {path: rule for path, rule in TRAIN_RULES.items()
             if path.startswith(("audio.", "upsampler."))}
    return {"audio": MAPPING, "upsampler": MAPPING, "model": MAPPING, **rules}


def _timing(prefix: str) -> dict[str, Rule]:
    """The reps settings of ``benchmarks.timing.interleaved_times`` under ``prefix``."""
    return {f"{prefix}warmup": NON_NEGATIVE_INT, f"{prefix}min_reps": POSITIVE_INT,
            f"{prefix}max_reps": POSITIVE_INT, f"{prefix}target_seconds": NON_NEGATIVE_NUMBER}


VOCODE_RULES: dict[str, Rule] = {
    **_groups(),
    "input": PATH_OR_NULL,
    "checkpoint": _or_null(TEXT),
    "model_config": PATH_OR_NULL,
    "output_dir": PATH,
    "device": DEVICE,
    "num_threads": THREADS_OR_NULL,
    "seed": SEED,
    "figures": BOOLEAN,
    "progress": BOOLEAN,
    "window_frames": POSITIVE_INT,
}

EVALUATE_RULES: dict[str, Rule] = {
    **_groups(),
    "checkpoint": _or_null(TEXT),
    "model_config": PATH_OR_NULL,
    "inputs": PATH_OR_NULL,
    "wav_dir": PATH_OR_NULL,
    "untrained_baseline": BOOLEAN,
    "seed": SEED,
    "num_threads": THREADS_OR_NULL,
    "output_dir": PATH,
    "table": MAPPING,
    "table.enabled": BOOLEAN,
    "table.checkpoints": TEXTS,
    "table.inputs": NON_EMPTY_MAPPING,
    "table.inputs.*": Rule("a wav, a folder or a .txt list (a non-empty path) or null "
                           "(the bundled recording)", PATH_OR_NULL.accepts),
    "table.output": PATH,
}

ANALYZE_RULES: dict[str, Rule] = {
    **_groups(),
    "checkpoint": _or_null(TEXT),
    "model_config": PATH_OR_NULL,
    "seeds": SEEDS,
    "max_input_channels": POSITIVE_INT,
    "figures": BOOLEAN,
    "speech_seconds": POSITIVE_NUMBER,
    "pause_lines": BOOLEAN,
    "tonal_levels": NON_ZERO_NUMBERS,
    "tonal_noise_seeds": SEEDS,
    "output_dir": PATH,
    "num_threads": THREADS_OR_NULL,
    "progress": BOOLEAN,
}

COMPARE_RULES: dict[str, Rule] = {"runs": PATH, "output_dir": PATH}

REFERENCE_RULES: dict[str, Rule] = {
    "reports": NON_EMPTY_MAPPING,
    "reports.*": Rule("the path of an analyze report.json", PATH.accepts),
    "study": PATH_OR_NULL,
    "output": PATH,
    "notes": ANY_TEXT,
}

LAYER_KEYS = ("name", "in_channels", "out_channels", "kernel_size", "stride", "padding",
              "groups", "length_factor")
OVERHEAD_KEYS = ("in_channels", "out_channels", "kernel_size", "stride", "padding")
GRID_KEYS = ("channels", "kernel_size", "stride", "length")
MODES = ("forward", "forward_backward")

BENCHMARK_RULES: dict[str, Rule] = {
    "num_threads": POSITIVE_INT,
    "device": DEVICE,
    "seed": SEED,
    # the layer table's three lists may be empty: `hifigan_presets=[] extra_layers=[]
    # mel_frames=[] SECTION.enabled=true` runs one section alone (the README's commands)
    "hifigan_presets": names_among(HIFIGAN_PRESETS, non_empty=False),
    "extra_layers": mappings_with(LAYER_KEYS, non_empty=False),
    "extra_layers.*.name": TEXT,
    **{f"extra_layers.*.{key}": POSITIVE_INT for key in LAYER_KEYS[1:]},
    "extra_layers.*.padding": NON_NEGATIVE_INT,
    "mel_frames": SOME_POSITIVE_INTS,
    "batch_sizes": POSITIVE_INTS,
    "modes": names_among(MODES),
    "timing": MAPPING, **_timing("timing."),
    "generator": MAPPING,
    "generator.enabled": BOOLEAN,
    "generator.preset": one_of(HIFIGAN_PRESETS),
    "generator.mel_frames": POSITIVE_INTS,
    "generator.batch_size": POSITIVE_INT,
    **_timing("generator."),
    "training": MAPPING,
    "training.enabled": BOOLEAN,
    "training.model": MAPPING,
    **{f"training.model.{key}": rule for key, rule in MODEL_RULES.items()},
    "training.mel_frames": POSITIVE_INTS,
    "training.batch_size": POSITIVE_INT,
    **_timing("training."),
    "overhead": MAPPING,
    "overhead.enabled": BOOLEAN,
    "overhead.layers": mappings_with(OVERHEAD_KEYS),
    **{f"overhead.layers.*.{key}": POSITIVE_INT for key in OVERHEAD_KEYS},
    "overhead.layers.*.padding": NON_NEGATIVE_INT,
    "overhead.lengths": POSITIVE_INTS,
    "overhead.timing": MAPPING, **_timing("overhead.timing."),
    "crossover": MAPPING,
    "crossover.enabled": BOOLEAN,
    **{f"crossover.{grid}": mappings_with(GRID_KEYS)
       for grid in ("matrix_grid", "index_grid", "windows_grid")},
    **{f"crossover.{grid}.*.{key}": POSITIVE_INT
       for grid in ("matrix_grid", "index_grid", "windows_grid") for key in GRID_KEYS},
    "crossover.timing": MAPPING, **_timing("crossover.timing."),
    "long_kernel": MAPPING,
    "long_kernel.enabled": BOOLEAN,
    **{f"long_kernel.{key}": POSITIVE_INT for key in ("channels", "kernel_size", "length", "reps")},
    "compile": MAPPING,
    "compile.enabled": BOOLEAN,
    "compile.presets": names_among(HIFIGAN_PRESETS),
    "compile.mel_frames": POSITIVE_INT,
    "compile.timing": MAPPING, **_timing("compile.timing."),
    "onnx": MAPPING,
    "onnx.enabled": BOOLEAN,
    "onnx.presets": names_among(HIFIGAN_PRESETS, non_empty=False),
    "onnx.bigvgan_presets": names_among(BIGVGAN_PRESETS, non_empty=False),
    "onnx.width": _or_null(POSITIVE_INT),
    "onnx.export_frames": POSITIVE_INT,
    "onnx.blocked_residuals": BOOLEAN,
    "onnx.mel_frames": POSITIVE_INT,
    "onnx.timing": MAPPING, **_timing("onnx.timing."),
    "bigvgan": MAPPING,
    "bigvgan.enabled": BOOLEAN,
    "bigvgan.preset": one_of(BIGVGAN_PRESETS),
    "bigvgan.sample_rate": POSITIVE_INT,
    "bigvgan.audio_seconds": POSITIVE_NUMBERS,
    "bigvgan.batch_size": POSITIVE_INT,
    **_timing("bigvgan."),
    "bigvgan.breakdown_reps": POSITIVE_INT,
    "streaming": MAPPING,
    "streaming.enabled": BOOLEAN,
    "streaming.presets": names_among(HIFIGAN_PRESETS),
    "streaming.width": _or_null(POSITIVE_INT),
    "streaming.mel_frames": POSITIVE_INT,
    "streaming.chunk_frames": POSITIVE_INTS,
    "streaming.profile": BOOLEAN,
    "streaming.sample_rate": POSITIVE_INT,
    "streaming.reps": POSITIVE_INT,
    "quick": BOOLEAN,
    "quick_settings": MAPPING,  # its options: the rules of the options they replace
    "output_dir": PATH,
    "progress": BOOLEAN,
}
QUICK = "quick_settings."
REPS_GROUPS = ("timing", "generator", "training", "overhead.timing", "crossover.timing",
               "compile.timing", "onnx.timing", "bigvgan")  # min_reps <= max_reps in each


# -- the walk ---------------------------------------------------------------------------------

@functools.lru_cache(maxsize=None)
def _pattern(path: str) -> re.Pattern[str]:
    return re.compile("\\.".join("[^.]+" if part == "*" else re.escape(part)
                                 for part in path.split(".")) + "$")


def rule_for(rules: Mapping[str, Rule], path: str) -> Rule | None:
    """The rule of dotted ``path`` (exact key first, then a ``*`` key; ``model.<field>``:
    MODEL_RULES when ``rules`` checks a model group); None: the recipe does not check it."""
    if path in rules:
        return rules[path]
    for key, rule in rules.items():
        if "*" in key and _pattern(key).match(path):
            return rule
    group, _, field = path.partition(".")
    if group == "model" and "model" in rules and field and "." not in field:
        return MODEL_RULES.get(field)
    return None


def walk(node: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """``(dotted path, value)`` of every option under ``node``, groups included (before what
    they hold); list entries that are mappings are walked as ``path.<index>``. Keys starting
    with ``_`` (Hydra's ``_target_``), ``_target_`` specs inside a group (a model's planned
    ``upsample_rates``: its function checks them) and the top-level ``hydra`` are left out."""
    for key, value in node.items():
        key = str(key)
        if key.startswith("_") or (not prefix and key == "hydra"):
            continue
        path = f"{prefix}{key}"
        if prefix and is_spec(value):  # instantiated by Hydra (plan_upsample_rates): its own
            continue
        yield path, value
        if isinstance(value, Mapping):
            yield from walk(value, f"{path}.")
        elif isinstance(value, list):
            for index, item in enumerate(value):
                if isinstance(item, Mapping):
                    yield from walk(item, f"{path}.{index}.")


def resolve(cfg: DictConfig, recipe: str) -> dict[str, Any]:
    """``cfg`` as plain containers, interpolations resolved; one line when one does not."""
    try:
        return OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)
    except MissingMandatoryValue as error:
        key = getattr(error, "full_key", None) or "an option"
        raise RecipeError(f"{key} must be given ({recipe} has no default for it)") from error
    except Exception as error:  # an interpolation naming a missing key, say
        raise RecipeError(f"the {recipe} config does not resolve: {one_line(error)}") from error


def check_rules(values: Mapping[str, Any], rules: Mapping[str, Rule],
                quick_prefix: str | None = None) -> None:
    """Raise one ``RecipeError`` line for the first option of ``values`` its rule refuses.

    Under ``quick_prefix`` an option takes the rule of the option it replaces.
    """
    for path, value in walk(values):
        lookup = path
        if quick_prefix and path.startswith(quick_prefix):
            lookup = path[len(quick_prefix):]
        rule = rule_for(rules, lookup)
        if rule is not None and not rule.accepts(value):
            raise RecipeError(f"{path} must be {rule.allowed}, got {value!r}")


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
    "ANALYZE_RULES", "BENCHMARK_RULES", "COMPARE_RULES", "EVALUATE_RULES", "REFERENCE_RULES",
    "VOCODE_RULES", "check_analyze_options", "check_benchmark_options", "check_compare_options",
    "check_evaluate_options", "check_reference_options", "check_rules", "check_vocode_options",
    "check_writable_dir", "check_writable_on_main", "resolve", "rule_for", "walk",
]
