"""The training section of recipes/benchmark.py: one generator step, ours vs torch's ups."""

from __future__ import annotations

import csv
from pathlib import Path

import torch
from torch import nn

from recipe_support import compose_config, load_recipe
from upsampler import ConvTranspose1d, HiFiGANGenerator
from upsampler.recipe_support.benchmarks.model_sections import with_native_upsamplers_trainable

benchmark = load_recipe("benchmark")


def test_training_section_times_the_same_model_both_ways(tmp_path: Path) -> None:
    cfg = compose_config("benchmark", [
        "quick=true", "progress=false", f"output_dir={tmp_path}", "hifigan_presets=[v3]",
        "quick_settings.mel_frames=[2]", "extra_layers=[]", "modes=[forward]",
        "training.enabled=true",
    ])
    results = benchmark.run(cfg)
    (row,) = results["training"]
    assert (row["hop"], row["mel_frames"], row["batch"]) == (200, 2, 1)
    assert row["ours_ms"] > 0 and row["native_ms"] > 0 and row["max_abs_diff"] < 1e-5
    with open(tmp_path / "training.csv", newline="") as stream:
        assert [r["mel_frames"] for r in csv.DictReader(stream)] == ["2"]


def test_native_copy_keeps_weight_norm_and_gradients() -> None:
    torch.manual_seed(0)
    ours = HiFiGANGenerator(upsample_rates=[5, 2], upsample_kernel_sizes=[10, 4],
                            upsample_initial_channel=16, resblock="2",
                            resblock_kernel_sizes=[3], resblock_dilation_sizes=[[1, 3]])
    native = with_native_upsamplers_trainable(ours)
    assert all(isinstance(up, ConvTranspose1d) for up in ours.ups)
    assert all(type(up).__bases__[0] is nn.ConvTranspose1d for up in native.ups)  # parametrized
    mel = torch.randn(2, 80, 5)
    for model in (ours, native):
        model(mel).square().sum().backward()
    for (name, a), (_, b) in zip(ours.named_parameters(), native.named_parameters()):
        torch.testing.assert_close(a.grad, b.grad, rtol=1e-4, atol=1e-6, msg=name)
