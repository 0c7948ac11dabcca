"""The library stays light and its presets have one source.

``import upsampler`` (and its core modules) must not pull in the recipes' dependencies,
and every ``configs/model/hifigan_v*.yaml`` must describe the same generator as the
Python preset table ``upsampler.models.PRESETS``.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from recipe_support import REPO, compose_config
from upsampler.models import HiFiGANGenerator, PRESETS
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


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_model_yaml_equals_the_python_preset(preset: str) -> None:
    cfg = compose_config("vocode", [f"model=hifigan_{preset}", "audio=22k_hop256"])
    fields = generator_fields(cfg.model)
    defaults = {"num_mels": 80, "upsampler": "transposed"}  # the audio / upsampler groups
    expected = json.loads(json.dumps({**defaults, **PRESETS[preset]}))  # tuples -> lists
    assert fields == expected
    built = HiFiGANGenerator(**fields)
    assert built.state_dict().keys() == HiFiGANGenerator.from_preset(preset).state_dict().keys()
