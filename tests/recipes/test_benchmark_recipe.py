"""Smoke test of recipes/benchmark.py with the quick settings, composed by Hydra into tmp_path."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest
import torch
from omegaconf import DictConfig

from recipe_support import compose_config, load_recipe

from upsampler import ConvTranspose1d, HiFiGANGenerator
from upsampler.recipe_support.benchmarks.model_sections import with_native_upsamplers

V3_LAYERS = 3  # HiFi-GAN V3 upsamples in three stages (8, 8, 4)
EXTRA_LAYERS = 2  # k3_s2 and depthwise in configs/benchmark.yaml
MODES = 2  # forward, forward_backward

benchmark = load_recipe("benchmark")


def make_cfg(output_dir: Path, *overrides: str) -> DictConfig:
    return compose_config("benchmark", [
        "quick=true", "progress=false", f"output_dir={output_dir}", "hifigan_presets=[v3]",
        "quick_settings.mel_frames=[2]", "quick_settings.generator.mel_frames=[2]",
        *overrides,
    ])


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, Path]:
    output_dir = tmp_path_factory.mktemp("benchmark")
    threads = torch.get_num_threads()
    out = benchmark.run(make_cfg(output_dir, "generator.enabled=true", "generator.preset=v3",
                                 "streaming.enabled=true", "streaming.presets=[v3]",
                                 "streaming.width=16", "streaming.chunk_frames=[4]",
                                 "quick_settings.streaming.runtimes=[eager,onnx]"))
    assert torch.get_num_threads() == threads  # the recipe restores the thread count
    return out, output_dir


def test_json_has_every_case_and_geometric_means(results: tuple[dict, Path]) -> None:
    returned, output_dir = results
    written = json.loads((output_dir / "benchmark.json").read_text())
    assert written["geometric_mean_ratio"] == pytest.approx(returned["geometric_mean_ratio"])
    rows = written["layers"]
    assert len(rows) == (V3_LAYERS + EXTRA_LAYERS) * MODES
    assert {row["mode"] for row in rows} == {"forward", "forward_backward"}
    for row in rows:
        assert row["reps"] == 2 and row["batch"] == 1 and row["mel_frames"] == 2
        assert row["ours_ms"] > 0 and row["native_ms"] > 0
        assert row["ratio"] == pytest.approx(row["ours_ms"] / row["native_ms"])
        assert row["ours_min_ms"] <= row["ours_ms"] and row["native_min_ms"] <= row["native_ms"]
    # later layers see the upsampled length: V3 rates (8, 8, 4)
    v3 = {row["name"]: row["input_length"] for row in rows if row["hifigan"]}
    assert v3 == {"v3.ups0": 2, "v3.ups1": 16, "v3.ups2": 128}
    # geometric mean over the HiFi-GAN rows only
    forward = [row["ratio"] for row in rows if row["hifigan"] and row["mode"] == "forward"]
    expected = math.prod(forward) ** (1 / len(forward))
    assert written["geometric_mean_ratio"]["forward"] == pytest.approx(expected)
    assert written["environment"]["num_threads"] == 2


def test_column_buffer_is_batch_channels_kernel_length(results: tuple[dict, Path]) -> None:
    rows = results[0]["layers"]
    first = next(row for row in rows if row["name"] == "v3.ups0")
    # 256 -> 128 channels, k16, 2 input steps, float32: 128 * 16 * 2 * 4 bytes
    assert first["column_buffer_mib"] == pytest.approx(128 * 16 * 2 * 4 / 2**20)


def test_csv_matches_json(results: tuple[dict, Path]) -> None:
    returned, output_dir = results
    with open(output_dir / "benchmark.csv", newline="") as stream:
        rows = list(csv.DictReader(stream))
    assert [row["name"] for row in rows] == [row["name"] for row in returned["layers"]]
    assert set(rows[0]) >= {"name", "mode", "batch", "ours_ms", "native_ms", "ratio",
                            "column_buffer_mib"}
    for row, expected in zip(rows, returned["layers"]):
        assert float(row["ratio"]) == pytest.approx(expected["ratio"])
    assert not list(output_dir.glob("*.tmp"))


def test_generator_section_compares_equal_models(results: tuple[dict, Path]) -> None:
    returned, output_dir = results
    (row,) = returned["generator"]
    assert row["preset"] == "v3" and row["mel_frames"] == 2
    assert row["max_abs_diff"] < 1e-5  # same weights: the two generators agree to rounding
    with open(output_dir / "generator.csv", newline="") as stream:
        assert float(next(csv.DictReader(stream))["ratio"]) == pytest.approx(row["ratio"])


def test_streaming_section_times_chunks_beside_offline(results: tuple[dict, Path]) -> None:
    returned, output_dir = results
    rows = returned["streaming"]
    assert [row["mode"] for row in rows] == ["offline", "chunk_4", "onnx_chunk_4"]
    for row in rows:
        assert row["preset"] == "v3" and row["mel_frames"] == 16 and row["reps"] == 1
        assert row["seconds_per_audio_second"] > 0
        assert row["max_abs_diff"] < 1e-5  # streamed audio (eager and exported) equals offline
    assert rows[0]["ratio_to_offline"] == 1.0
    with open(output_dir / "streaming.csv", newline="") as stream:
        written = list(csv.DictReader(stream))
    assert float(written[1]["ratio_to_offline"]) == pytest.approx(rows[1]["ratio_to_offline"])


def test_native_swap_keeps_weights_and_uses_torch_layers() -> None:
    generator = HiFiGANGenerator.from_preset("v3").eval()
    generator.remove_weight_norm()
    native = with_native_upsamplers(generator)
    assert all(type(up) is torch.nn.ConvTranspose1d for up in native.ups)
    assert all(isinstance(up, ConvTranspose1d) for up in generator.ups)
    mel = torch.randn(1, 80, 3)
    with torch.no_grad():
        torch.testing.assert_close(native(mel), generator(mel))


def test_bad_mode_is_rejected() -> None:
    with pytest.raises(ValueError, match="mode must be 'forward' or 'forward_backward', got 'both'"):
        benchmark.step(torch.nn.Identity(), torch.zeros(1), "both")


def test_streaming_profile_splits_each_call_by_kind_of_op(tmp_path: Path) -> None:
    out = benchmark.run(make_cfg(tmp_path, "hifigan_presets=[]", "extra_layers=[]", "streaming.enabled=true",
                                 "streaming.presets=[v3]", "streaming.width=16",
                                 "streaming.profile=true"))
    rows = {row["mode"]: row for row in out["streaming"]}
    for row in rows.values():
        parts = row["products_ms"] + row["elementwise_ms"] + row["joins_copies_ms"]
        assert row["products_ms"] > 0 and row["elementwise_ms"] > 0
        assert parts <= row["profiled_ms"] * 1.05  # main-thread self time within the wall time
        assert row["op_calls"] > 0
    # a stream calls more operators than one offline forward, and over every step
    assert rows["chunk_1"]["op_calls"] > rows["offline"]["op_calls"]
    assert rows["offline"]["op_calls_per_step"] == rows["offline"]["op_calls"]
    assert rows["offline"]["products_vs_offline"] == pytest.approx(
        rows["offline"]["products_ms"] / rows["offline"]["profiled_ms"])
