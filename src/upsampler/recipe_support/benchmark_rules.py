"""What every option of configs/benchmark.yaml allows, as one rule table by dotted path.

The top-level options are the layer table's (``hifigan_presets``, ``extra_layers``,
``mel_frames``, ``batch_sizes``, ``modes``, ``timing``); each further section
(``generator``, ``training``, ``overhead``, ``crossover``, ``long_kernel``, ``compile``,
``onnx``, ``bigvgan``, ``streaming``) is a group with its ``enabled`` switch, as is ``docs``
(the Markdown tables' file). The reps
settings of :func:`~upsampler.recipe_support.benchmarks.timing.interleaved_times` recur in
several (:data:`REPS_GROUPS`, where ``min_reps <= max_reps`` must hold too), the options
under :data:`QUICK` take the rule of the option they replace, and ``training.model`` gets
train's ``MODEL_RULES``. :mod:`.option_rules` says how the table is read.
"""

from __future__ import annotations

from upsampler.models.bigvgan import PRESETS as BIGVGAN_PRESETS
from upsampler.models.hifigan import PRESETS as HIFIGAN_PRESETS
from upsampler.recipe_support.option_rules import (
    DEVICE,
    MAPPING,
    PATH,
    POSITIVE_NUMBERS,
    SEED,
    SOME_POSITIVE_INTS,
    mappings_with,
    names_among,
    one_of,
)
from upsampler.recipe_support.train_options import (
    BOOLEAN,
    MODEL_RULES,
    NON_NEGATIVE_INT,
    NON_NEGATIVE_NUMBER,
    POSITIVE_INT,
    POSITIVE_INTS,
    TEXT,
    Rule,
    _or_null,
)

STREAM_RUNTIMES = ("eager", "onnx")  # the streaming section: session, exported step


def _timing(prefix: str) -> dict[str, Rule]:
    """The reps settings of ``benchmarks.timing.interleaved_times`` under ``prefix``."""
    return {f"{prefix}warmup": NON_NEGATIVE_INT, f"{prefix}min_reps": POSITIVE_INT,
            f"{prefix}max_reps": POSITIVE_INT, f"{prefix}target_seconds": NON_NEGATIVE_NUMBER}


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
    # mel_frames=[] SECTION.enabled=true` runs one section alone (one docs/benchmarks.md section)
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
    "streaming.runtimes": names_among(STREAM_RUNTIMES),
    "docs": MAPPING,
    "docs.enabled": BOOLEAN,
    "docs.output": PATH,
    "quick": BOOLEAN,
    "quick_settings": MAPPING,  # its options: the rules of the options they replace
    "output_dir": PATH,
    "progress": BOOLEAN,
}
QUICK = "quick_settings."
REPS_GROUPS = ("timing", "generator", "training", "overhead.timing", "crossover.timing",
               "compile.timing", "onnx.timing", "bigvgan")  # min_reps <= max_reps in each


__all__ = ["BENCHMARK_RULES", "QUICK", "REPS_GROUPS"]
