"""The package shows its design: a small root, short modules, one name per module, tests
that follow the folders, and the import paths the README and ``__all__`` promise.
"""

from __future__ import annotations

import importlib
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

import upsampler
from recipe_support import REPO

PACKAGE = REPO / "src" / "upsampler"
TESTS = REPO / "tests"
MAX_ROOT_MODULES = 4
MAX_MODULE_LINES = 320  # "about 300": a module past it mixes concerns
# the import paths the README shows, each as (module, attribute or None)
DOCUMENTED_PATHS = [
    ("upsampler", "ConvTranspose1d"), ("upsampler", "HiFiGANGenerator"),
    ("upsampler", "UpsampleBlock"), ("upsampler", "load_hifigan"),
    ("upsampler", "BigVGANGenerator"), ("upsampler", "load_bigvgan"),
    ("upsampler.models.pretrained", "load_pretrained"), ("upsampler.lengths", "exact_padding"),
    ("upsampler.streaming", "StreamingModule"), ("upsampler.audio", "copy_synthesis"),
    ("upsampler.onnx_layout", None), ("upsampler.functional", "conv_transpose1d"),
    ("upsampler.training.data", "SegmentDataset"), ("upsampler.analysis", "tonal_artifacts"),
    ("upsampler.analysis", "pause_lines"), ("upsampler.analysis", "overlap_map"),
    ("upsampler.analysis", "compare_aliasing"), ("upsampler.conv_transpose", "dispatch"),
]


def _modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def test_the_root_holds_at_most_four_modules() -> None:
    root = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert len(root) <= MAX_ROOT_MODULES, root


def test_no_module_is_much_over_three_hundred_lines() -> None:
    long = {str(p.relative_to(PACKAGE)): n for p in _modules()
            if (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES}
    assert long == {}


def test_no_two_modules_share_a_name() -> None:
    """No file name twice, and no module named like a package (streaming/generator.py beside
    models/generator.py, or streaming/conv_transpose.py beside conv_transpose/, would be)."""
    names = Counter(p.name for p in _modules() if p.name != "__init__.py")
    assert [name for name, count in names.items() if count > 1] == []
    packages = {p.parent.name for p in _modules() if p.name == "__init__.py"}
    assert sorted(packages & {p.stem for p in _modules()}) == []


def test_streaming_sits_below_the_layers() -> None:
    """Imports run downhill: the streaming package imports no layer, model or recipe code."""
    for path in (PACKAGE / "streaming").glob("*.py"):
        text = path.read_text()
        for above in ("upsampler.layers", "upsampler.models", "upsampler.recipe_support"):
            assert f"from {above}" not in text and f"import {above}" not in text, path.name


def test_test_folders_follow_the_package_folders() -> None:
    folders = {p.name for p in TESTS.iterdir() if p.is_dir() and p.name != "__pycache__"}
    package = {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert folders - {"recipes"} <= package, sorted(folders - package)
    loose = sorted(p.name for p in TESTS.glob("test_*.py"))
    assert loose == ["test_package_layout.py", "test_structure.py"]  # package-wide checks only


@pytest.mark.parametrize(("module", "name"), DOCUMENTED_PATHS, ids=lambda v: str(v))
def test_documented_import_paths_hold(module: str, name: str | None) -> None:
    # a fresh interpreter: ``import upsampler.functional`` must work without a prior import
    statement = f"import {module}" if name is None else f"from {module} import {name}"
    result = subprocess.run([sys.executable, "-c", statement], capture_output=True, text=True,
                            timeout=120, env={"PYTHONPATH": str(REPO / "src")}, cwd=REPO)
    assert result.returncode == 0, result.stderr[-1000:]


@pytest.mark.parametrize("name", upsampler.__all__)
def test_every_name_in_all_imports_from_the_package(name: str) -> None:
    assert getattr(importlib.import_module("upsampler"), name) is not None
    exec(f"from upsampler import {name}", {})
