"""The BigVGAN benchmark's reference: NVIDIA's BigVGAN on our weights, or a skipped section."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

import upstream
from recipe_support import compose_config, load_recipe
from upsampler import BigVGANGenerator
from upsampler.recipe_support.benchmarks.model_sections import BREAKDOWN, nvidia_bigvgan

TOLERANCE = 1e-5
SMALL = dict(upsample_initial_channel=16, resblock_kernel_sizes=[3, 7],
             resblock_dilation_sizes=[[1, 3, 5], [1, 3, 5]], activation="snake",
             snake_logscale=False, use_tanh_at_final=False, use_bias_at_final=False)


def small_folded(**overrides: object) -> BigVGANGenerator:
    torch.manual_seed(0)
    generator = BigVGANGenerator(**{**SMALL, **overrides}).eval()
    with torch.no_grad():
        for name, parameter in generator.named_parameters():
            if name.endswith(("alpha", "beta")):
                parameter.add_(torch.empty_like(parameter).uniform_(-0.5, 0.5))
    generator.remove_weight_norm()
    return generator


def hide_bigvgan(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every import of ``bigvgan`` fails, as if it were not installed."""
    for name in [n for n in sys.modules if n == "bigvgan" or n.startswith("bigvgan.")]:
        monkeypatch.delitem(sys.modules, name)
    for name in ("bigvgan", "bigvgan.bigvgan", "bigvgan.env"):
        monkeypatch.setitem(sys.modules, name, None)


def test_reference_is_nvidias_bigvgan_on_our_weights() -> None:
    upstream.bigvgan_module()  # skips, or fails under UPSAMPLER_REQUIRE_ORACLES=1, without it
    ours = small_folded()
    reference = nvidia_bigvgan(ours)
    assert type(reference) is upstream.bigvgan_module().BigVGAN and not reference.training
    assert not any(name.endswith("weight_g") for name in reference.state_dict())  # folded
    mel = torch.randn(1, 80, 4)
    with torch.no_grad():
        expected = reference(mel)
        assert expected.abs().max() > 1e-3
        assert (ours(mel) - expected).abs().max().item() <= TOLERANCE
    # every breakdown category finds modules under NVIDIA's names too
    names = dict(reference.named_modules())
    for category, test in BREAKDOWN.items():
        assert any(test(module, name) for name, module in names.items()), category


def test_reference_needs_a_folded_anti_aliased_generator() -> None:
    torch.manual_seed(0)
    with pytest.raises(ValueError, match="fold generator's weight norm first"):
        nvidia_bigvgan(BigVGANGenerator(**SMALL))
    with pytest.raises(ValueError, match="anti_alias=False"):
        nvidia_bigvgan(small_folded(anti_alias=False))


def test_without_the_package_the_section_says_so_and_skips(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    hide_bigvgan(monkeypatch)
    assert nvidia_bigvgan(small_folded()) is None
    cfg = compose_config("benchmark", [
        "quick=true", "progress=false", f"output_dir={tmp_path}", "hifigan_presets=[]",
        "extra_layers=[]", "mel_frames=[]", "bigvgan.enabled=true",
    ])
    results = load_recipe("benchmark").run(cfg)
    assert results["bigvgan"] == []
    assert not (tmp_path / "bigvgan.csv").exists() and (tmp_path / "benchmark.json").is_file()
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("bigvgan")]
    assert lines == ["bigvgan: skipped, NVIDIA's bigvgan package is not installed "
                     "(pip install --no-deps bigvgan==2.4.1 && pip install huggingface_hub)"]
