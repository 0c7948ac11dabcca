"""Figures for the artifact analysis. Every function returns a ``matplotlib.figure.Figure``.

No backend is chosen here: figures are built with ``matplotlib.figure.Figure`` directly
(no pyplot state), so they work under any backend the caller picked and need
``fig.savefig(path)`` to be seen. Public API:

    plot_overlap(counts, stride, title="Overlap map") -> Figure
    plot_phase_gains(gains, title="Per-phase gains", max_rows=64) -> Figure
    plot_tonal_spectrum(report, title="Averaged power spectrum") -> Figure
    plot_spectrogram(waveform, sample_rate, n_fft=1024, hop_length=256,
                     tone_frequencies=None, title="Spectrogram") -> Figure
    plot_comparison(rows, title="Tonal excess by upsampler") -> Figure

``report`` is a :class:`~upsampler.analysis.tonal.TonalReport`; ``rows`` are
:func:`~upsampler.analysis.compare.compare_upsamplers` rows.
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import torch
from matplotlib.figure import Figure

from upsampler.analysis.spectrum import check_sample_rate
from upsampler.lengths import check_int

POWER_EPS = 1e-30  # keeps log10 finite on exactly-zero bins
DISPLAY_FLOOR_DB = -40.0  # comparison bars stop here: below it no tone stands out of the noise
DISPLAY_MARGIN_DB = 15.0  # room for the value labels above and below the bars
SPECTROGRAM_RANGE_DB = 100.0  # colour scale of the spectrogram: this far below its peak
FIGURE_SIZE = (8.0, 4.0)
COLOUR_CYCLE = 10  # matplotlib's default colours C0..C9, reused for phases past the tenth
LEGEND_PHASES = 10  # phases named in the overlap map's legend; later ones reuse the colours
SPECTRUM_RANGE_DB = 120.0  # the tonal spectrum's plotted floor: this far below the noise peak
FLOOR_MARKER = "v"  # a line below the plotted floor: a down triangle sitting on the floor
NO_LINE_LABEL = "no line (below floor)"


def plot_overlap(counts: np.ndarray, stride: int, title: str = "Overlap map") -> Figure:
    """Bar chart of taps per output sample, coloured by output phase ``n mod stride``.

    Every sample gets its bar; the legend names the first ``LEGEND_PHASES`` phases.
    """
    check_int("stride", stride, 1)
    counts = np.asarray(counts)
    if counts.ndim != 1 or len(counts) == 0:
        raise ValueError(f"counts must be a non-empty 1-D array, got shape {counts.shape}")
    figure = Figure(figsize=FIGURE_SIZE)
    axes = figure.add_subplot()
    positions = np.arange(len(counts))
    for phase in range(stride):
        chosen = positions % stride == phase
        label = f"phase {phase}" if phase < LEGEND_PHASES else None
        axes.bar(positions[chosen], counts[chosen], color=f"C{phase % COLOUR_CYCLE}", label=label)
    axes.set_title(title)
    axes.set_xlabel("output sample index")
    axes.set_ylabel("kernel taps reaching the sample (count)")
    axes.legend(loc="upper right", fontsize="small", ncol=2)
    return figure


def plot_phase_gains(
    gains: np.ndarray, title: str = "Per-phase gains", max_rows: int = 64
) -> Figure:
    """Heatmap of phase gains ``(C_in, C_out, S)`` (or ``(S,)``): one row per channel pair."""
    check_int("max_rows", max_rows, 1)
    gains = np.asarray(gains, dtype=np.float64)
    if gains.ndim == 0 or gains.shape[-1] == 0:
        raise ValueError(f"gains must have a non-empty last (phase) axis, got {gains.shape}")
    rows = gains.reshape(-1, gains.shape[-1])[:max_rows]  # (C_in, C_out, S) -> (pairs, S)
    figure = Figure(figsize=FIGURE_SIZE)
    axes = figure.add_subplot()
    limit = max(np.abs(rows).max(), POWER_EPS)
    image = axes.imshow(rows, aspect="auto", cmap="coolwarm", vmin=-limit, vmax=limit,
                        interpolation="nearest")
    colourbar = figure.colorbar(image, ax=axes)
    colourbar.set_label("sum of taps on the phase (gain)")
    axes.set_title(title)
    axes.set_xlabel("output phase r = n mod stride")
    axes.set_ylabel("channel pair (in * C_out + out)")
    return figure


def plot_tonal_spectrum(report: object, title: str = "Averaged power spectrum") -> Figure:
    """Noise and constant-probe spectra in dB with the expected tone frequencies marked.

    Levels are re. the noise spectrum's peak and clipped at a plotted floor
    ``SPECTRUM_RANGE_DB`` below it (a dashed line); every multiple of ``fs_out / S`` where
    the constant probe puts no line above that floor gets a ``FLOOR_MARKER`` on the floor,
    labelled "no line (below floor)", instead of a drop to the numerical floor.
    """
    for name in ("frequencies", "noise_spectrum", "constant_spectrum", "tone_frequencies"):
        if not hasattr(report, name):
            raise ValueError(f"report must be a TonalReport, got {type(report).__name__}")
    figure = Figure(figsize=FIGURE_SIZE)
    axes = figure.add_subplot()
    reference = max(report.noise_spectrum.max(), POWER_EPS)
    floor = -SPECTRUM_RANGE_DB
    levels = {}
    for spectrum, label in ((report.noise_spectrum, "white-noise input"),
                            (report.constant_spectrum, "constant input")):
        level = 10 * np.log10(np.maximum(spectrum, POWER_EPS) / reference)
        levels[label] = level
        axes.plot(report.frequencies, np.maximum(level, floor), label=label, linewidth=0.8)
    strides = getattr(report, "strides", None)
    if strides:
        period_bins = report.n_fft // int(np.prod(strides))
        bins = np.arange(period_bins, len(report.frequencies), period_bins)
        silent = bins[levels["constant input"][bins] < floor]
        if len(silent):
            axes.plot(report.frequencies[silent], np.full(len(silent), floor), FLOOR_MARKER,
                      color="C1", markerfacecolor="none", markersize=5, linestyle="none",
                      label=NO_LINE_LABEL)
    axes.axhline(floor, color="black", linestyle="--", linewidth=0.6,
                 label=f"plotted floor ({floor:.0f} dB)")
    for index, frequency in enumerate(report.tone_frequencies):
        axes.axvline(frequency, color="grey", linestyle=":", linewidth=0.7,
                     label="expected tone m * fs_l / s_l" if index == 0 else None)
    level_text = ""
    if hasattr(report, "constant_value"):
        level_text = f", probes: constant {report.constant_value:g}, noise std {report.noise_std:g}"
    axes.set_title(f"{title}\n(tonal excess {report.summary_db:.1f} dB{level_text})",
                   fontsize="medium")
    axes.set_ylim(floor - DISPLAY_MARGIN_DB / 3, None)
    axes.set_xlabel("frequency (Hz)")
    axes.set_ylabel("power re. noise peak (dB)")
    axes.legend(loc="upper right", fontsize="small")
    figure.tight_layout()
    return figure


def plot_spectrogram(
    waveform: torch.Tensor | np.ndarray,
    sample_rate: float,
    n_fft: int = 1024,
    hop_length: int = 256,
    tone_frequencies: Optional[Sequence[float]] = None,
    title: str = "Spectrogram",
) -> Figure:
    """Log-power STFT spectrogram of a 1-D waveform (e.g. a generator's ``out[0, 0]``)."""
    check_sample_rate(sample_rate)
    check_int("n_fft", n_fft, 2)
    check_int("hop_length", hop_length, 1)
    signal = torch.as_tensor(np.asarray(waveform, dtype=np.float64)).flatten()
    if len(signal) < n_fft:
        raise ValueError(f"waveform must hold at least n_fft={n_fft} samples, got {len(signal)}")
    window = torch.hann_window(n_fft, dtype=signal.dtype)
    stft = torch.stft(signal, n_fft, hop_length, window=window, center=False, return_complex=True)
    power_db = 10 * torch.log10(stft.abs().square().clamp_min(POWER_EPS)).numpy()
    figure = Figure(figsize=FIGURE_SIZE)
    axes = figure.add_subplot()
    duration = len(signal) / sample_rate
    image = axes.imshow(power_db, origin="lower", aspect="auto", cmap="magma",
                        extent=(0.0, duration, 0.0, sample_rate / 2),
                        vmin=power_db.max() - SPECTROGRAM_RANGE_DB, vmax=power_db.max())
    figure.colorbar(image, ax=axes).set_label("power (dB)")
    tones = () if tone_frequencies is None else tuple(float(f) for f in tone_frequencies)
    for index, frequency in enumerate(tones):
        axes.axhline(frequency, color="cyan", linestyle=":", linewidth=0.6,
                     label="expected tone" if index == 0 else None)
    if tones:
        axes.legend(loc="upper right", fontsize="small")
    axes.set_title(title)
    axes.set_xlabel("time (s)")
    axes.set_ylabel("frequency (Hz)")
    return figure


def plot_comparison(
    rows: Sequence[dict[str, object]], title: str = "Tonal excess by upsampler"
) -> Figure:
    """Bars of each row's mean ``summary_db`` from 0 dB, seeds' min-max as error bars.

    Bars stop at ``DISPLAY_FLOOR_DB``; a row below it is labelled "no tone" instead of a
    bar reaching down to the numerical floor. Every bar carries its value in dB.
    """
    if len(rows) == 0:
        raise ValueError("rows must hold at least one compare_upsamplers row, got none")
    names = [str(row["name"]) for row in rows]
    means = np.array([row["summary_db"] for row in rows], dtype=np.float64)
    lower = means - np.array([row["summary_db_min"] for row in rows], dtype=np.float64)
    upper = np.array([row["summary_db_max"] for row in rows], dtype=np.float64) - means
    tonal = means > DISPLAY_FLOOR_DB
    shown = np.where(tonal, means, DISPLAY_FLOOR_DB)
    errors = np.stack([np.where(tonal, lower, 0.0), np.where(tonal, upper, 0.0)])
    figure = Figure(figsize=FIGURE_SIZE)
    axes = figure.add_subplot()
    positions = np.arange(len(rows))
    axes.bar(positions, shown, yerr=errors, capsize=4, color=np.where(tonal, "C3", "C2"),
             label="tonal excess, mean over seeds (min-max bars)")
    for x, mean, top, is_tonal in zip(positions, means, shown, tonal):
        text = f"{mean:.1f} dB" if is_tonal else f"no tone (< {DISPLAY_FLOOR_DB:.0f} dB)"
        axes.annotate(text, (x, top), ha="center", va="bottom" if top >= 0 else "top",
                      fontsize="small")
    axes.axhline(0.0, color="black", linewidth=0.8, label="0 dB: tone level = noise floor")
    axes.set_ylim(DISPLAY_FLOOR_DB - DISPLAY_MARGIN_DB, max(shown.max(), 0.0) + DISPLAY_MARGIN_DB)
    axes.set_xticks(positions, names, rotation=20, ha="right")
    axes.set_title(title)
    axes.set_xlabel("upsampler")
    axes.set_ylabel("constant-input tone over noise floor (dB)")
    axes.legend(loc="upper right", fontsize="small")
    figure.tight_layout()
    return figure
