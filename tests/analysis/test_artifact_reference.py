"""Silence-mel level, analyze's new report fields, the trained-reference table and the plots'
floor markers (issue 20, part 5)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from recipe_support import compose_config, load_recipe
from upsampler.analysis import plots, tonal_artifacts
from upsampler.analysis.spectrum import FLOOR_DB
from upsampler.training.artifacts import SILENCE_LOG_LEVEL, probe_level_dbfs
from upsampler.training.study import metric_figure, reference_markdown

analyze = load_recipe("analyze")


class Constant(torch.nn.Module):
    """A 'generator' of hop 4 whose output is a constant ``value`` (no learnable use)."""

    upsample_rates = (4,)

    def __init__(self, value: float) -> None:
        super().__init__()
        self.value = value
        self.weight = torch.nn.Parameter(torch.zeros(1))

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        return torch.full((mel.shape[0], 1, mel.shape[-1] * 4), self.value) + self.weight


def test_silence_level_is_the_rms_in_dbfs() -> None:
    mel = torch.full((8, 40), SILENCE_LOG_LEVEL)
    assert math.isclose(probe_level_dbfs(Constant(0.01), mel), -40.0, abs_tol=1e-5)  # float32 0.01
    assert math.isclose(probe_level_dbfs(Constant(-1.0), mel), 0.0, abs_tol=1e-5)


def test_analyze_reports_pause_lines_silence_level_and_probe_level(tmp_path: Path) -> None:
    cfg = compose_config("analyze", ["model=debug", "audio=16k_hop200", f"output_dir={tmp_path}",
                                     "progress=false", "figures=false", "tonal_levels=[1.0,-5.0]",
                                     "tonal_noise_seeds=[0,1]"])
    report = analyze.run(cfg)
    assert report["tonal_excess_db"]["probe"] == {"constant_value": 1.0, "noise_std": 1.0}
    seed = report["tonal_excess_db"]["per_seed"][0]
    assert seed["constant"] >= seed["layer"]  # every multiple holds every layer's tones
    assert [entry["constant_value"] for entry in report["tonal_by_level"]] == [1.0, -5.0]
    assert report["tonal_by_level"][1]["noise_std"] == 5.0
    lines = report["pause_lines"]
    assert (lines["line_spacing"], lines["nyquist"]) == (80.0, 8000.0)  # 16 kHz / hop 200
    assert 0.0 <= lines["added_fraction"] <= lines["line_fraction"] <= 1.0
    assert lines["pause_seconds"] > 0.5  # the recording's leading and trailing pauses
    assert math.isfinite(report["silence_mel"]["level_dbfs"])


def test_reference_table_lists_each_report_and_study_row() -> None:
    spread = {"mean": 40.0, "min": 39.0, "max": 41.0}
    report = {"checkpoint": "demo", "seeds": [None], "sample_rate": 16000, "hop_length": 200,
              "tonal_excess_db": {"constant": spread, "layer": spread},
              "silence_mel": {"tonal_excess_db": -28.7, "level_dbfs": -79.8},
              "pause_lines": {"line_fraction": 0.977, "input_line_fraction": 0.0,
                              "added_fraction": 0.837, "added_multiples": [1, 4],
                              "added_level_db": -36.2},
              "tonal_by_level": [{"constant_value": 1.0, "noise_std": 1.0, "constant": spread,
                                  "noise": spread}]}
    text = reference_markdown({"shipped demo": report},
                              [{"kind": "subpixel", "tonal_constant_db": 35.4}])
    assert "| shipped demo (`demo`) | 16000 / 200 | 40.0 [39.0, 41.0] | 40.0 [39.0, 41.0] | " \
           "-28.7 | -79.8 | 97.7 | 0.0 | 83.7 | -36.2 |" in text
    assert "| shipped demo | 1 | 1 | 39.0 to 41.0 | 39.0 to 41.0 |" in text
    assert "| subpixel | 35.4 | - | - | - |" in text


def test_tonal_plot_marks_missing_lines_on_a_floor() -> None:
    identity = torch.nn.ConvTranspose1d(1, 1, 2, 2, bias=False)  # nearest: no line at all
    identity.weight.data.fill_(1.0)
    report = tonal_artifacts(identity, 16000.0, num_frames=600, n_fft=512)
    axes = plots.plot_tonal_spectrum(report).axes[0]
    labels = axes.get_legend_handles_labels()[1]
    assert plots.NO_LINE_LABEL in labels
    assert axes.get_ylim()[0] > -plots.SPECTRUM_RANGE_DB - plots.DISPLAY_MARGIN_DB  # not -150


def test_study_curves_keep_overlapping_kinds_apart() -> None:
    steps = [0, 120, 240]
    figure = metric_figure({"nearest_conv": (steps, [FLOOR_DB] * 3),
                            "linear_conv": (steps, [FLOOR_DB] * 3),
                            "transposed": (steps, [80.0, 60.0, 50.0])}, "tonal_constant_db")
    axes = figure.axes[0]
    by_label = {line.get_label(): line for line in axes.get_lines()}
    nearest, linear = by_label["nearest_conv"], by_label["linear_conv"]
    assert nearest.get_marker() != linear.get_marker()
    assert not np.allclose(nearest.get_xdata(), linear.get_xdata())  # shifted sideways
    assert np.all(nearest.get_ydata() > FLOOR_DB)  # drawn on the plotted floor
    assert any("no line (below floor" in label for label in by_label)
