"""The library stays light, cycle-free and downhill, its old import paths hold, and its
presets have one source.

``import upsampler`` (and its core modules) must not pull in the recipes' dependencies;
every module imports on its own in a fresh interpreter (no import cycle); no library module
imports the recipes' support package; the public names ``upsampler.audio``,
``upsampler.export`` and ``upsampler.onnx_layout`` had before the first two became packages
still import from there; and every preset's ``configs/model/<family>_<preset>.yaml``
(``hifigan_v1`` ... ``bigvgan_v2_24k_256x``) must describe the same generator as the
family's Python preset (``HiFiGANGenerator.presets``, ``BigVGANGenerator.presets``).
"""

from __future__ import annotations

import ast
import importlib
import inspect
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from recipe_support import REPO, compose_config
from upsampler.models.family import FAMILIES
from upsampler.recipe_support.build import generator_fields

HEAVY = ("hydra", "omegaconf", "matplotlib", "librosa")
CORE = ("upsampler", "upsampler.layers", "upsampler.models", "upsampler.lengths",
        "upsampler.audio", "upsampler.streaming", "upsampler.export")


def test_core_imports_pull_in_no_recipe_dependency() -> None:
    # one fresh interpreter: if the union of the imports is clean, each one is
    code = (f"import sys, json, {', '.join(CORE)}; "
            f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120, env={"PYTHONPATH": str(REPO / "src")}, cwd=REPO)
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(result.stdout) == []


def test_mel_front_end_still_builds_its_filterbank_lazily() -> None:
    from upsampler.audio import MelSpectrogram

    transform = MelSpectrogram()
    assert tuple(transform.mel_basis.shape) == (80, 513)
    assert "librosa" in sys.modules  # imported on first use


PACKAGE = REPO / "src" / "upsampler"
# Public names of the modules audio.py, export.py and onnx_layout.py had before each became
# a package (export.py's __all__ and the constants recipes import; every public name of
# audio.py, which had no __all__): each must still import from the same path.
AUDIO_NAMES = (
    "BACKENDS", "BUNDLED_SPEECH", "HIFIGAN_AUDIO_FIELDS", "LOG_CLAMP", "MAGNITUDE_EPS",
    "MelSpectrogram", "check_wav", "copy_synthesis", "file_sample_rate", "load_audio",
    "log_mel", "mel_filterbank", "mel_kwargs_from_config", "mel_spectrogram", "save_audio",
    "sound_path",
)
EXPORT_NAMES = (
    "LOWERINGS", "Conv1dAs2d", "exportable", "export_onnx", "onnx_node_types", "onnx_session",
    "quiet_onnx_logs", "export_torchscript", "max_abs_error", "run_onnx", "run_torchscript",
    "with_2d_convs", "with_blocked_residuals",
    "BATCH_AXIS", "INPUT_NAME", "MIN_EXPORT_LENGTH", "OUTPUT_NAME", "QUIET_LOGGERS",
    "TIME_AXIS", "TORCHSCRIPT_METHODS",
)
ONNX_LAYOUT_NAMES = (
    "CHANNEL_BLOCK", "BlockedMRF", "BlockedResidualBlock", "Conv1dAs2d", "IdentityConv2d",
    "blocked_channels", "with_2d_convs", "with_blocked_residuals",
)


def package_modules() -> list[str]:
    """Dotted names of every module under src/upsampler, found from the files (no import)."""
    names = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


def test_every_module_imports_first_in_a_fresh_interpreter() -> None:
    # a cycle only breaks when the import starts at one of its modules: start at each in turn
    code = (
        "import importlib, json, sys\n"
        f"failed = {{}}\nfor name in {package_modules()!r}:\n"
        "    for loaded in [m for m in sys.modules if m.split('.')[0] == 'upsampler']:\n"
        "        del sys.modules[loaded]\n"
        "    try:\n        importlib.import_module(name)\n"
        "    except Exception as error:\n"
        "        failed[name] = f'{type(error).__name__}: {error}'\n"
        "print(json.dumps(failed))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=300, env={"PYTHONPATH": str(REPO / "src")}, cwd=REPO)
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(result.stdout.splitlines()[-1]) == {}


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def test_no_library_module_imports_the_recipes_support() -> None:
    uphill = {
        str(path.relative_to(PACKAGE)): sorted(
            name for name in imported_modules(path) if name.startswith("upsampler.recipe_support"))
        for path in PACKAGE.rglob("*.py") if "recipe_support" not in path.parts
    }
    assert {path: names for path, names in uphill.items() if names} == {}


@pytest.mark.parametrize(("path", "names"), [
    ("upsampler.audio", AUDIO_NAMES), ("upsampler.export", EXPORT_NAMES),
    ("upsampler.onnx_layout", ONNX_LAYOUT_NAMES),
])
def test_public_names_from_before_the_packages_still_import(
        path: str, names: tuple[str, ...]) -> None:
    module = importlib.import_module(path)
    assert [name for name in names if not hasattr(module, name)] == []
    assert [name for name in names if name not in module.__all__] == []


def test_copy_synthesis_keeps_its_documented_path() -> None:
    import upsampler.audio
    from upsampler.audio.inference import copy_synthesis

    assert upsampler.audio.copy_synthesis is copy_synthesis


def test_old_onnx_layout_path_gives_the_export_packages_objects() -> None:
    import upsampler.export.onnx_layout as layout
    import upsampler.onnx_layout as old

    assert old.__all__ == layout.__all__
    assert all(getattr(old, name) is getattr(layout, name) for name in ONNX_LAYOUT_NAMES)


AUDIO_FOR_MELS = {80: "22k_hop256", 100: "24k_hop256"}  # an audio group with those mels
PRESET_CASES = [(family, preset) for family in FAMILIES for preset in sorted(family.presets)]


@pytest.mark.parametrize(("family", "preset"), PRESET_CASES,
                         ids=[f"{f.model_prefix}{p}" for f, p in PRESET_CASES])
def test_model_yaml_equals_the_python_preset(family, preset: str) -> None:
    signature = inspect.signature(family.generator.__init__).parameters
    # fields a preset leaves out take the constructor's defaults (HiFi-GAN: num_mels 80 from
    # the audio group, upsampler "transposed" from the upsampler group; BigVGAN: anti_alias)
    defaults = {name: signature[name].default for name in family.fields}
    expected = json.loads(json.dumps({**defaults, **family.presets[preset]}))  # tuples -> lists
    audio = AUDIO_FOR_MELS[expected["num_mels"]]
    cfg = compose_config("vocode", [f"model={family.model_prefix}{preset}", f"audio={audio}"])
    fields = generator_fields(cfg.model)
    assert fields == expected
    with torch.device("meta"):  # keys only; BigVGAN v2 has 112 M parameters
        built = family.generator(**fields)
        from_preset = family.generator.from_preset(preset)
    assert built.state_dict().keys() == from_preset.state_dict().keys()
