"""What the options of vocode, evaluate, analyze, compare, reference and stream allow: one
rule table per recipe, by dotted path (:mod:`.option_rules` says how a table is read).

A recipe's ``audio``, ``upsampler`` and ``model`` groups get train's rules
(:data:`~upsampler.recipe_support.train_options.RULES`, ``MODEL_RULES``), so
``audio.hop_length=abc`` or ``model.upsample_rates=[]`` is one line before anything is built.
Benchmark's table, longer than these together, has its own module, :mod:`.benchmark_rules`.
"""

from __future__ import annotations

from upsampler.models.hifigan import PRESETS as HIFIGAN_PRESETS
from upsampler.recipe_support.option_rules import (
    ANY_TEXT,
    DEVICE,
    MAPPING,
    NON_EMPTY_MAPPING,
    NON_ZERO_NUMBERS,
    PATH,
    PATH_OR_NULL,
    SEED,
    SEEDS,
    TEXTS,
    THREADS_OR_NULL,
    names_among,
)
from upsampler.recipe_support.train_options import (
    BOOLEAN,
    POSITIVE_INT,
    POSITIVE_INTS,
    POSITIVE_NUMBER,
    RULES as TRAIN_RULES,
    TEXT,
    Rule,
    _or_null,
)


def _groups() -> dict[str, Rule]:
    """``audio.*`` and ``upsampler.kind`` as train checks them (``model.*``: MODEL_RULES)."""
    rules = {path: rule for path, rule in TRAIN_RULES.items()
             if path.startswith(("audio.", "upsampler."))}
    return {"audio": MAPPING, "upsampler": MAPPING, "model": MAPPING, **rules}


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


def each_once(rule: Rule) -> Rule:
    """``rule``, and no entry of the list twice (a repeat would measure a row twice)."""
    return Rule(f"{rule.allowed}, each once",
                lambda v: rule.accepts(v) and len({repr(x) for x in v}) == len(v))


STREAM_RUNTIMES = ("eager", "onnx")  # StreamingGenerator; export_streaming + OnnxStream

STREAM_RULES: dict[str, Rule] = {
    "presets": each_once(names_among(HIFIGAN_PRESETS)),
    "width": _or_null(POSITIVE_INT),
    "chunk_frames": each_once(POSITIVE_INTS),
    "mel_frames": POSITIVE_INT,
    "sample_rate": POSITIVE_INT,
    "runtimes": each_once(names_among(STREAM_RUNTIMES)),
    "num_threads": POSITIVE_INT,
    "seed": SEED,
    "realtime": BOOLEAN,
    "atol": POSITIVE_NUMBER,
    "offline_reps": POSITIVE_INT,
    "docs": MAPPING,
    "docs.enabled": BOOLEAN,
    "docs.output": PATH,
    "output_dir": PATH,
}


__all__ = ["ANALYZE_RULES", "COMPARE_RULES", "EVALUATE_RULES", "REFERENCE_RULES",
           "STREAM_RULES", "STREAM_RUNTIMES", "VOCODE_RULES", "each_once"]
