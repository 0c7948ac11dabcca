"""Every option of vocode, evaluate, analyze, compare, benchmark, reference and stream is checked
before any work (issue 21), and every recipe refuses an output folder it cannot write with one
line.

The batteries come from each recipe's composed config (tests/option_battery.py), nested groups
included (``table.*``, benchmark's sections, ``quick_settings.*``), so an option added later is
tried too. Each case calls the recipe's ``run()`` in process on one composed config: a bad
value must stop it with one ``RecipeError`` line naming the option before any model is built
or file written (milliseconds a case).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from omegaconf import DictConfig

from option_battery import nested_battery, tree_state, value_set, with_value
from recipe_support import REPO, compose_config, load_recipe

from upsampler.recipe_support import recipe_options
from upsampler.recipe_support.errors import RecipeError

GROUPS = ("audio", "upsampler", "model")  # picked by name on the command line; fields tried
RECIPES = {name: load_recipe(name) for name in
           ("vocode", "evaluate", "analyze", "compare", "benchmark", "reference", "stream")}
# values of the battery that are allowed: a zero seed, warm-up or fmin; empty notes
ALLOWED = {
    "vocode": {"seed=0", "audio.fmin=0"},
    "evaluate": {"seed=0", "audio.fmin=0"},
    "analyze": {"audio.fmin=0"},
    "compare": set(),
    "benchmark": {"seed=0", *(f"{group}.warmup=0" for group in (
        "timing", "generator", "training", "overhead.timing", "crossover.timing",
        "compile.timing", "onnx.timing", "bigvgan", "quick_settings.timing",
        "quick_settings.training", "quick_settings.onnx.timing")),
        *(f"{group}.target_seconds=0" for group in (  # 0 s: min_reps decide
            "timing", "generator", "training", "overhead.timing", "crossover.timing",
            "compile.timing", "onnx.timing", "bigvgan"))},
    "reference": {"notes="},
    "stream": {"seed=0"},
}
# options each battery must reach (nested ones and those the issue names)
MUST_TRY = {
    "vocode": {"window_frames", "figures", "audio.hop_length", "model.upsample_rates"},
    "evaluate": {"table", "table.enabled", "table.checkpoints", "table.inputs",
                 "table.inputs.allison_heldout", "table.output", "untrained_baseline"},
    "analyze": {"tonal_levels", "tonal_noise_seeds", "seeds", "speech_seconds",
                "max_input_channels", "pause_lines"},
    "compare": {"runs", "output_dir"},
    "benchmark": {"timing.min_reps", "generator.preset", "training.model.upsample_rates",
                  "overhead.layers", "crossover.windows_grid", "long_kernel.kernel_size",
                  "compile.presets", "onnx.width", "bigvgan.audio_seconds",
                  "streaming.chunk_frames", "quick_settings.timing.max_reps", "extra_layers",
                  "docs.enabled", "docs.output"},
    "reference": {"reports", "reports.shipped demo", "study", "output", "notes"},
    "stream": {"presets", "chunk_frames", "runtimes", "realtime", "atol", "docs.enabled",
               "docs.output"},
}


def base_config(name: str, root: Path) -> DictConfig:
    """The recipe's composed config, writing (if it ever got that far) under ``root``."""
    overrides = {"reference": [f"output={root / 'out' / 'reference.md'}"],
                 "compare": [f"runs={root / 'runs'}"],
                 "evaluate": [f"table.output={root / 'out' / 'quality.md'}"],
                 "benchmark": [f"docs.output={root / 'out' / 'benchmarks.md'}"],
                 "stream": [f"docs.output={root / 'out' / 'streaming.md'}"]}.get(name, [])
    if name != "reference":
        overrides.append(f"output_dir={root / 'out'}")
    return compose_config(name, overrides)


def run_of(name: str) -> Callable[[DictConfig], object]:
    return RECIPES[name].run


@pytest.mark.parametrize("name", list(RECIPES))
def test_every_bad_option_is_one_line_before_any_work(
        name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Wrong type, 0, -1 and empty for every option (nested too): one line naming it, the
    tree unchanged; the values the battery leaves out are accepted by the check."""
    (tmp_path / "runs").mkdir()
    monkeypatch.chdir(tmp_path)  # a relative path that slipped through would land here
    base = base_config(name, tmp_path)
    before = tree_state(tmp_path)
    cases = nested_battery(base, GROUPS)
    assert MUST_TRY[name] <= {option for option, _, _ in cases}
    check = getattr(recipe_options, f"check_{name}_options")
    for option, override, value in cases:
        with value_set(base, option, value) as changed:
            if override in ALLOWED[name]:
                check(changed)
                continue
            with pytest.raises(RecipeError) as caught:
                run_of(name)(changed)
        message = str(caught.value)
        assert message.startswith(f"{option} must be ") and "\n" not in message, (override,
                                                                                  message)
        assert repr(value) in message, override
        assert tree_state(tmp_path) == before, override
    assert {override for _, override, _ in cases} >= ALLOWED[name]


@pytest.mark.parametrize("override, message", [
    ("num_threads=0", "num_threads must be a positive integer or null, got 0"),
    ("audio.hop_length=abc", "audio.hop_length must be a positive integer, got 'abc'"),
    ("model.upsample_rates=[]",
     "model.upsample_rates must be a non-empty list of positive integers, got []"),
    ("model=debug", None),
])
def test_model_and_audio_fields_are_one_line(override: str, message: str | None,
                                             tmp_path: Path) -> None:
    """Composed from the command line's spelling (what Hydra makes of it), for a recipe with
    model groups; a valid model group passes."""
    for name in ("vocode", "evaluate", "analyze"):
        cfg = compose_config(name, [f"output_dir={tmp_path}", override])
        check = getattr(recipe_options, f"check_{name}_options")
        if message is None:
            check(cfg)
            continue
        with pytest.raises(RecipeError, match=f"^{message.replace('[', '.').replace(']', '.')}$"):
            check(cfg)


@pytest.mark.parametrize("option, value, message", [
    ("extra_layers", [{"name": "x", "in_channels": 4}],
     "extra_layers must be a list (may be empty) of {name, in_channels, out_channels"),
    ("extra_layers.0.in_channels", 0, "extra_layers.0.in_channels must be a positive integer"),
    ("extra_layers.1.padding", -1, "extra_layers.1.padding must be an integer >= 0, got -1"),
    ("overhead.layers.1.stride", "abc", "overhead.layers.1.stride must be a positive integer"),
    ("crossover.index_grid", [], "crossover.index_grid must be a non-empty list of"),
    ("crossover.matrix_grid.2.length", 0, "crossover.matrix_grid.2.length must be a positive"),
    ("timing.min_reps", 30, "timing.min_reps must be <= timing.max_reps, got 30 > 25"),
    ("bigvgan.preset", "v1", "bigvgan.preset must be one of ["),
    ("modes", ["forward", "backward"], "modes must be a non-empty list of names among"),
    ("hifigan_presets", ["v4"], "hifigan_presets must be a list (may be empty) of names among"),
    ("training.model.resblock", 2, "training.model.resblock must be one of ['1', '2'], got 2"),
    ("streaming.profile", "yes", "streaming.profile must be true or false, got 'yes'"),
    ("device", "gpu", "device must be 'cpu', 'cuda' or 'cuda:N'"),
])
def test_benchmark_list_entries_and_cross_checks(option: str, value: object, message: str,
                                                 tmp_path: Path) -> None:
    """Entries of lists of layers and grids, and min_reps <= max_reps, before any timing."""
    cfg = with_value(base_config("benchmark", tmp_path), option, value)
    with pytest.raises(RecipeError) as caught:
        RECIPES["benchmark"].run(cfg)
    assert str(caught.value).startswith(message) and "\n" not in str(caught.value)
    assert not (tmp_path / "out").exists()


def test_benchmark_quick_settings_are_checked_merged(tmp_path: Path) -> None:
    """quick=true: quick_settings' values must satisfy the cross checks once merged."""
    base = base_config("benchmark", tmp_path)
    cfg = with_value(with_value(base, "quick", True), "quick_settings.timing.min_reps", 3)
    with pytest.raises(RecipeError, match=r"^timing.min_reps must be <= timing.max_reps "
                                          r"\(quick_settings merged\), got 3 > 2$"):
        RECIPES["benchmark"].run(cfg)
    recipe_options.check_benchmark_options(with_value(base, "quick_settings.timing.min_reps", 3))


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here")
def test_benchmark_cuda_without_cuda_is_one_line(tmp_path: Path) -> None:
    cfg = with_value(base_config("benchmark", tmp_path), "device", "cuda")
    with pytest.raises(RecipeError, match="^device must be cpu here: CUDA is not available"):
        RECIPES["benchmark"].run(cfg)


# The folder a run writes into: below a regular file it cannot be made (root ignores modes).

BLOCKED = {  # recipe -> (overrides with {blocked} for a path below a file, option in the line)
    "vocode": (["output_dir={blocked}", "checkpoint=none", "model=debug", "audio=16k_hop200"],
               "output_dir"),
    "evaluate": (["output_dir={blocked}", "checkpoint=none", "model=debug",
                  "audio=16k_hop200"], "output_dir"),
    "evaluate_table": (["output_dir={root}", "table.enabled=true",
                        "table.output={blocked}/quality.md"], "table.output's folder"),
    "analyze": (["output_dir={blocked}", "model=debug", "audio=16k_hop200"], "output_dir"),
    "compare": (["runs={root}", "output_dir={blocked}"], "output_dir"),
    "benchmark": (["output_dir={blocked}", "quick=true"], "output_dir"),
    "benchmark_docs": (["output_dir={root}/run", "quick=true", "docs.enabled=true",
                        "docs.output={blocked}/benchmarks.md"], "docs.output's folder"),
    "reference": (["output={blocked}/reference.md"], "output's folder"),
    "stream": (["output_dir={blocked}"], "output_dir"),
    "stream_docs": (["output_dir={root}/run", "docs.enabled=true",
                     "docs.output={blocked}/streaming.md"], "docs.output's folder"),
    "export": (["output_dir={blocked}", "model=debug"], "output_dir"),
    "prepare_data": (["output_dir={blocked}", "cache_dir={root}/cache"], "output_dir"),
    "train": (["output_dir={blocked}", "model=debug", "audio=16k_hop200"], "output_dir"),
}


@pytest.mark.parametrize("case", list(BLOCKED))
def test_output_folder_below_a_file_is_one_line(case: str, tmp_path: Path) -> None:
    name = case.removesuffix("_table").removesuffix("_docs")
    blocker = tmp_path / "file"
    blocker.write_text("a file where a folder should be")
    overrides, option = BLOCKED[case]
    cfg = compose_config(name, [item.format(blocked=blocker / "sub", root=tmp_path)
                                for item in overrides])
    before = tree_state(tmp_path)
    recipe = RECIPES[name] if name in RECIPES else load_recipe(name)
    with pytest.raises(RecipeError) as caught:
        recipe.run(cfg)
    message = str(caught.value)
    assert message.startswith(f"{option} '{blocker / 'sub'}' is not writable (") \
        and "\n" not in message, message
    assert tree_state(tmp_path) == before


def test_writable_check_leaves_no_folder_it_made(tmp_path: Path) -> None:
    made = recipe_options.check_writable_dir(tmp_path / "a" / "b", "output_dir")
    assert made == tmp_path / "a" / "b" and list(tmp_path.iterdir()) == []
    (tmp_path / "kept").mkdir()
    recipe_options.check_writable_dir(tmp_path / "kept", "output_dir")
    assert list((tmp_path / "kept").iterdir()) == []


@pytest.mark.parametrize("recipe", ["reference"])
def test_command_line_with_run_dir_below_a_file_is_one_line(recipe: str, tmp_path: Path) -> None:
    """Hydra would make ``hydra.run.dir`` and fail with a traceback; the recipe says why."""
    blocker = tmp_path / "file"
    blocker.write_text("a file where a folder should be")
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "OMP_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, str(REPO / "recipes" / f"{recipe}.py"),
                             f"hydra.run.dir={blocker / 'x'}"],
                            capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path)
    assert result.returncode == 1
    assert "Traceback" not in result.stdout + result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith(
        f"hydra.run.dir='{blocker / 'x'}' cannot be created")
