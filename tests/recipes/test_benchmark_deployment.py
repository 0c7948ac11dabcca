"""The deployment section of recipes/benchmark.py: four runtimes of one generator, one row each."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from recipe_support import compose_config, load_recipe

for _module in ("onnx", "onnxruntime", "onnxscript"):
    pytest.importorskip(_module)

benchmark = load_recipe("benchmark")
FAST = "{warmup: 0, min_reps: 1, max_reps: 1, target_seconds: 0.0}"
RUNTIMES = ("eager", "torchscript", "ort_dense", "ort_conv_transpose")
WIDTH = 16  # reduced width: an export of the full models takes about a minute each here


def test_deployment_section_times_every_runtime(tmp_path: Path) -> None:
    """One HiFi-GAN preset at reduced width (BigVGAN's exports are covered in
    tests/export/test_export_models.py; its full-depth preset here adds minutes to the suite)."""
    cfg = compose_config("benchmark", [
        "progress=false", f"output_dir={tmp_path}", "hifigan_presets=[]", "extra_layers=[]",
        "onnx.enabled=true", "onnx.presets=[v3]", "onnx.bigvgan_presets=[]",
        f"onnx.width={WIDTH}", "onnx.mel_frames=11", f"onnx.timing={FAST}",
    ])
    rows = benchmark.run(cfg)["onnx"]
    assert [row["model"] for row in rows] == ["hifigan_v3"]
    for row in rows:
        assert row["max_abs_diff"] <= 1e-4  # every runtime computes eager's output
        assert all(row[f"{name}_ms"] > 0 for name in RUNTIMES)
        for name in RUNTIMES[1:]:
            assert row[f"{name}_ratio"] == pytest.approx(row[f"{name}_ms"] / row["eager_ms"])
    with open(tmp_path / "onnx.csv", newline="") as stream:
        assert [line["model"] for line in csv.DictReader(stream)] == ["hifigan_v3"]
    assert (tmp_path / "hifigan_v3_conv_transpose.onnx").is_file()
