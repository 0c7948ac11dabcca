"""Smoke tests of recipes/analyze.py and recipes/compare.py with the tiny model."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import DictConfig

from recipe_support import REPO, compose_config, load_recipe

# audio=16k_hop200 (the bundled speech's own rate: no resampling); plan_upsample_rates
# gives hop 200 = 5 * 5 * 4 * 2 as strides [5, 5, 4, 2], and the debug model pairs each stride with k = 2s.
SAMPLE_RATE, STRIDES, KERNELS = 16000, [5, 5, 4, 2], [10, 10, 8, 4]
LAYER_IN_CHANNELS = [16, 8, 4, 2]  # configs/model/debug.yaml: 16 channels, halved per stage
PNG_MAGIC = b"\x89PNG"

analyze, compare = load_recipe("analyze"), load_recipe("compare")


def make_cfg(name: str, *overrides: str) -> DictConfig:
    return compose_config(name, overrides)


def analyze_cfg(output_dir: Path, *overrides: str) -> DictConfig:
    return make_cfg("analyze", "model=debug", "audio=16k_hop200", f"output_dir={output_dir}",
                    "progress=false", *overrides)


def test_analyze_writes_report_and_every_figure(tmp_path: Path) -> None:
    report = analyze.run(analyze_cfg(tmp_path, "seeds=[0,1]", "speech_seconds=0.5"))
    assert json.loads((tmp_path / "report.json").read_text()) == report
    assert report["upsampler"] == "transposed"
    assert (report["sample_rate"], report["strides"]) == (SAMPLE_RATE, STRIDES)
    assert report["upsample_kernel_sizes"] == KERNELS and report["hop_length"] == math.prod(STRIDES)
    for probe in ("constant", "noise"):
        spread = report["tonal_excess_db"][probe]
        assert spread["min"] <= spread["mean"] <= spread["max"]
        assert all(math.isfinite(value) for value in spread.values())
    assert [entry["seed"] for entry in report["tonal_excess_db"]["per_seed"]] == [0, 1]
    aliasing = report["aliasing_db"]  # last stage: 2 input channels, stride 2, no filters
    assert (aliasing["stage"], aliasing["in_channels"], aliasing["stride"]) == (3, 2, 2)
    assert aliasing["without_anti_alias"] is None
    assert [entry["seed"] for entry in aliasing["per_seed"]] == [0, 1]
    low, high = (min(e["mean_db"] for e in aliasing["per_seed"]),
                 max(e["mean_db"] for e in aliasing["per_seed"]))
    assert (aliasing["sweep_mean"]["min"], aliasing["sweep_mean"]["max"]) == (low, high)
    layers = report["phase_gain_imbalance"]
    assert [(layer["layer"], layer["stride"]) for layer in layers] == list(enumerate(STRIDES))
    assert all(layer["median_coefficient_of_variation"] >= 0 for layer in layers)
    # k = 2s: every output phase receives exactly two taps (Odena et al.'s even overlap)
    assert [entry["taps_per_phase"] for entry in report["overlap"]] == [[2] * s for s in STRIDES]
    expected_figures = {f"overlap_layer{i}.png" for i in range(4)} | {
        f"phase_gains_layer{i}.png" for i in range(4)} | {"tonal_spectrum.png", "spectrogram.png"}
    assert set(report["figures"]) == expected_figures
    for name in expected_figures:
        assert (tmp_path / name).read_bytes()[:4] == PNG_MAGIC


def test_icnr_subpixel_report_has_even_phase_gains_and_no_overlap(tmp_path: Path) -> None:
    report = analyze.run(analyze_cfg(tmp_path, "upsampler=subpixel_icnr", "figures=false"))
    assert report["upsampler"] == "subpixel_icnr" and report["overlap"] is None
    assert report["figures"] == [] and not list(tmp_path.glob("*.png"))
    # ICNR makes the layer nearest-neighbour resize + conv at init (Aitken et al. 2017)
    for layer in report["phase_gain_imbalance"]:
        assert layer["median_coefficient_of_variation"] == pytest.approx(0.0, abs=1e-9)
    # max_input_channels=16 probes every channel of each stage: the count is per layer
    probed = [layer["probed_input_channels"] for layer in report["phase_gain_imbalance"]]
    assert probed == LAYER_IN_CHANNELS


def test_analyze_measures_checkpoint_weights_once(tmp_path: Path) -> None:
    import torch
    from hydra.utils import instantiate

    cfg = analyze_cfg(tmp_path, "figures=false", "seeds=[0,1,2]")
    torch.manual_seed(7)
    torch.save({"generator": instantiate(cfg.model).state_dict()}, tmp_path / "g_00000007")
    cfg.checkpoint = str(tmp_path / "g_00000007")
    report = analyze.run(cfg)
    assert report["seeds"] == [None] and report["checkpoint"] == cfg.checkpoint
    assert len(report["tonal_excess_db"]["per_seed"]) == 1


def test_analyze_bad_checkpoint_is_one_line_error(tmp_path: Path) -> None:
    with pytest.raises(analyze.RecipeError, match="/no/such/g_1") as caught:
        analyze.run(analyze_cfg(tmp_path, "checkpoint=/no/such/g_1", "figures=false"))
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("seconds", [0.01, 0.05])  # too short for the mel; for the STFT
def test_analyze_too_short_speech_is_one_line_error(tmp_path: Path, seconds: float) -> None:
    with pytest.raises(analyze.RecipeError, match=f"speech_seconds={seconds}") as caught:
        analyze.run(analyze_cfg(tmp_path, f"speech_seconds={seconds}"))
    assert "\n" not in str(caught.value)
    assert not list(tmp_path.glob("*.png"))


def test_compare_without_reports_is_one_line_error(tmp_path: Path) -> None:
    with pytest.raises(compare.RecipeError, match="no report.json"):
        compare.run(make_cfg("compare", f"runs={tmp_path}", f"output_dir={tmp_path / 'out'}"))


@pytest.mark.parametrize("content", ["{}", '{"upsampler": "transposed"}', "[1, 2]"])
def test_compare_report_without_analyze_fields_is_one_line_error(
    tmp_path: Path, content: str
) -> None:
    (tmp_path / "run0").mkdir()
    (tmp_path / "run0" / "report.json").write_text(content)
    with pytest.raises(compare.RecipeError, match="run0/report.json") as caught:
        compare.run(make_cfg("compare", f"runs={tmp_path}", f"output_dir={tmp_path / 'out'}"))
    assert "\n" not in str(caught.value)


def test_multirun_then_compare_end_to_end(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    analyze_command = [
        sys.executable, str(REPO / "recipes" / "analyze.py"), "-m",
        "model=debug", "audio=16k_hop200",
        "upsampler=transposed,nearest_conv", "figures=false", "progress=false",
        f"hydra.sweep.dir={sweep}",
    ]
    result = subprocess.run(analyze_command, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr[-2000:]
    reports = sorted(sweep.rglob("report.json"))
    assert [path.parent.name for path in reports] == ["0_transposed", "1_nearest_conv"]
    assert all((path.parent / "analyze.log").is_file() for path in reports)

    result = subprocess.run([sys.executable, str(REPO / "recipes" / "compare.py"), f"runs={sweep}"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    out = sweep / "compare"
    rows = json.loads((out / "comparison.json").read_text())
    assert [row["name"] for row in rows] == ["transposed", "nearest_conv"]
    # Pons et al. 2021: at initialisation the transposed stack is tonal, resize + conv is not
    by_name = {row["name"]: row for row in rows}
    assert by_name["nearest_conv"]["summary_db"] < by_name["transposed"]["summary_db"]
    table = (out / "comparison.md").read_text().splitlines()
    assert len(table) == 2 + len(rows) and table[2].startswith("| transposed | [5, 5, 4, 2]")
    assert (out / "comparison.png").read_bytes()[:4] == PNG_MAGIC
    assert (out / "compare.log").is_file()
