"""Plot functions return labelled Figures; the Agg backend comes from conftest.py."""

from __future__ import annotations

from typing import Iterator

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

from upsampler.analysis import (
    build_stack,
    overlap_map,
    phase_gains,
    stack_response,
    tonal_artifacts,
)
from upsampler.analysis import plots

SMALL_CHANNELS = (4, 2, 2)


@pytest.fixture
def close_figures() -> Iterator[list[Figure]]:
    figures: list[Figure] = []
    yield figures
    for figure in figures:
        plt.close(figure)


@pytest.fixture(scope="module")
def report():
    torch.manual_seed(0)
    return tonal_artifacts(build_stack("transposed", (4, 2), (8, 4), SMALL_CHANNELS), 16000.0)


def test_overlap_plot(close_figures: list[Figure]) -> None:
    figure = plots.plot_overlap(overlap_map(3, 2, 6, padding=1), 2, title="k=3, s=2")
    close_figures.append(figure)
    (axes,) = figure.axes
    assert axes.get_title() == "k=3, s=2"
    assert "sample" in axes.get_xlabel() and "count" in axes.get_ylabel()
    heights = sorted((bar.get_x(), bar.get_height()) for bar in axes.patches)
    assert [h for _, h in heights] == [1, 2, 1, 2, 1, 2, 1, 2, 1, 2, 1]
    assert [t.get_text() for t in axes.get_legend().get_texts()] == ["phase 0", "phase 1"]


def test_overlap_map_draws_every_phase_of_a_large_stride(close_figures: list[Figure]) -> None:
    counts = overlap_map(24, 12, 3)  # k = 2s at s = 12: phases 10 and 11 need bars too
    figure = plots.plot_overlap(counts, 12)
    close_figures.append(figure)
    (axes,) = figure.axes
    heights = [bar.get_height() for bar in sorted(axes.patches, key=lambda bar: bar.get_x())]
    assert heights == counts.tolist()
    assert len(axes.get_legend().get_texts()) == 10


def test_phase_gain_heatmap(close_figures: list[Figure]) -> None:
    gains = phase_gains(np.arange(24.0).reshape(2, 3, 4), 2)  # (2, 3, 2)
    figure = plots.plot_phase_gains(gains)
    close_figures.append(figure)
    axes = figure.axes[0]
    assert axes.images[0].get_array().shape == (6, 2)
    assert "phase" in axes.get_xlabel() and axes.get_title()
    assert "gain" in figure.axes[1].get_ylabel()  # the colour bar


def test_tonal_spectrum_marks_expected_tones(report, close_figures: list[Figure]) -> None:
    figure = plots.plot_tonal_spectrum(report)
    close_figures.append(figure)
    (axes,) = figure.axes
    assert axes.get_xlabel() == "frequency (Hz)" and "dB" in axes.get_ylabel()
    spectra = [line for line in axes.lines if len(line.get_xdata()) > 2]
    assert len(spectra) == 2
    marks = {float(line.get_xdata()[0]) for line in axes.lines
             if len(line.get_xdata()) == 2 and line.get_xdata()[0] == line.get_xdata()[1]}
    assert marks == {float(f) for f in report.tone_frequencies}
    texts = [text.get_text() for text in axes.get_legend().get_texts()]
    assert len(texts) in (4, 5)  # two spectra, the floor, the tones (+ "no line" markers)
    assert any(text.startswith("plotted floor") for text in texts)
    assert f"{report.summary_db:.1f} dB" in axes.get_title()


def test_spectrogram_axes_and_tone_lines(close_figures: list[Figure]) -> None:
    t = np.arange(8000) / 8000.0
    figure = plots.plot_spectrogram(np.sin(2 * np.pi * 1000 * t), 8000.0, n_fft=256,
                                    hop_length=64, tone_frequencies=[2000.0])
    close_figures.append(figure)
    axes = figure.axes[0]
    assert axes.get_xlabel() == "time (s)" and axes.get_ylabel() == "frequency (Hz)"
    image = axes.images[0]
    assert image.get_extent() == pytest.approx([0.0, 1.0, 0.0, 4000.0])
    column = image.get_array()[:, 10]
    assert int(np.argmax(column)) == 32  # 1 kHz at 8 kHz / 256 = bin 32
    assert [line.get_ydata()[0] for line in axes.lines] == [2000.0]


def test_comparison_bars(close_figures: list[Figure]) -> None:
    rows = [
        {"name": "a", "summary_db": 30.0, "summary_db_min": 25.0, "summary_db_max": 33.0},
        {"name": "b", "summary_db": -150.0, "summary_db_min": -150.0, "summary_db_max": -150.0},
    ]
    figure = plots.plot_comparison(rows)
    close_figures.append(figure)
    axes = figure.axes[0]
    tops = [bar.get_y() + bar.get_height() for bar in axes.patches]
    assert tops == pytest.approx([30.0, plots.DISPLAY_FLOOR_DB])  # -150 dB stops at the floor
    assert [bar.get_y() for bar in axes.patches] == pytest.approx([0.0, 0.0])
    labels = [text.get_text() for text in axes.texts]
    assert labels[0].startswith("30.0 dB") and labels[1].startswith("no tone")
    assert [label.get_text() for label in axes.get_xticklabels()] == ["a", "b"]
    assert "dB" in axes.get_ylabel() and axes.get_legend() is not None


def test_stack_response_gains_plot_from_real_stack(close_figures: list[Figure]) -> None:
    torch.manual_seed(0)
    response = stack_response(build_stack("subpixel", (2, 2), (4, 4), SMALL_CHANNELS))
    figure = plots.plot_phase_gains(response.phase_gains, max_rows=3)
    close_figures.append(figure)
    assert figure.axes[0].images[0].get_array().shape == (3, 4)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: plots.plot_overlap(np.array([]), 2), "counts"),
        (lambda: plots.plot_spectrogram(np.zeros(100), 0.0), "sample_rate"),
        (lambda: plots.plot_spectrogram(np.zeros(100), 8000.0, n_fft=256), "n_fft"),
        (lambda: plots.plot_comparison([]), "rows"),
        (lambda: plots.plot_tonal_spectrum(object()), "TonalReport"),
    ],
)
def test_plots_reject_bad_input(call, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()
