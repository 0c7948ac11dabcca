"""The layer-core sections of recipes/benchmark.py (overhead, crossover, long kernel), smoke-run."""

from __future__ import annotations

import json
from pathlib import Path

import upstream
from recipe_support import compose_config, load_recipe

from upsampler.conv_transpose import dispatch

benchmark = load_recipe("benchmark")
FAST = "{warmup: 0, min_reps: 2, max_reps: 2, target_seconds: 0.0}"


def test_sections_write_their_rows(tmp_path: Path) -> None:
    cfg = compose_config("benchmark", [
        "progress=false", f"output_dir={tmp_path}", "hifigan_presets=[]", "extra_layers=[]",
        "overhead.enabled=true", "overhead.lengths=[1]", f"overhead.timing={FAST}",
        "crossover.enabled=true", f"crossover.timing={FAST}",
        "crossover.matrix_grid=[{channels: 2, kernel_size: 4, stride: 2, length: 3}]",
        "crossover.index_grid=[{channels: 2, kernel_size: 4, stride: 2, length: 3}]",
        "crossover.windows_grid=[{channels: 2, kernel_size: 40, stride: 1, length: 5}]",
        "long_kernel.enabled=true", "long_kernel.channels=2", "long_kernel.kernel_size=64",
        "long_kernel.length=16",
    ])
    results = benchmark.run(cfg)
    modes = 2
    assert len(results["overhead"]) == len(cfg.overhead.layers) * modes
    assert {row["pair"] for row in results["crossover"]} == {
        "matrix/index", "index/blocks", "windows/blocks"}
    assert {row["impl"] for row in results["long_kernel"]} == {"ours", "native"}
    for row in results["long_kernel"]:
        assert row["forward_s"] > 0 and row["forward_backward_s"] > 0
    # forcing a formulation for the crossover leaves the library's choice as it was
    assert dispatch.limits() == dispatch.LIMITS
    assert dispatch.forward_path(1, 2, 3, 2, 4, 2, 1, 0, 1, 1, "cpu").kernel == "matrix"
    written = json.loads((tmp_path / "benchmark.json").read_text())
    assert set(written) >= {"overhead", "crossover", "long_kernel"}
    for name in ("overhead", "crossover", "long_kernel"):
        assert (tmp_path / f"{name}.csv").read_text().count("\n") == len(results[name]) + 1


def test_every_model_section_returns_rows(tmp_path: Path) -> None:
    cfg = compose_config("benchmark", [
        "quick=true", "progress=false", f"output_dir={tmp_path}", "hifigan_presets=[]",
        "extra_layers=[]", "mel_frames=[]", "bigvgan.enabled=true", "streaming.enabled=true",
        "training.enabled=true", "streaming.width=16",
    ])
    results = benchmark.run(cfg)
    for section in ("streaming", "training"):
        assert results[section], section  # a section that forgot its rows returns None
        assert (tmp_path / f"{section}.csv").is_file()
    if upstream.bigvgan_available():  # the BigVGAN section times NVIDIA's BigVGAN
        assert results["bigvgan"] and (tmp_path / "bigvgan.csv").is_file()
        for row in results["bigvgan"]:
            assert row["reference"] == "bigvgan.bigvgan.BigVGAN"
            assert row["max_abs_diff"] < 1e-5  # same weights, same numbers
    else:  # without the package the section is skipped (tests/recipes/test_benchmark_bigvgan.py)
        assert results["bigvgan"] == [] and not (tmp_path / "bigvgan.csv").exists()
