"""The library stays light and its presets have one source.

``import upsampler`` (and its core modules) must not pull in the recipes' dependencies,
and every preset's ``configs/model/<family>_<preset>.yaml`` (``hifigan_v1`` ...
``bigvgan_v2_24k_256x``) must describe the same generator as the family's Python preset
(``HiFiGANGenerator.presets``, ``BigVGANGenerator.presets``).
"""

from __future__ import annotations

import inspect
import json
import subprocess
import sys

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
