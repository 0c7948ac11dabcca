"""Averaged power spectra and the tone-excess measure on them (numpy, no torch).

* :func:`averaged_power_spectrum`: Welch's method. The signal ``(..., N)`` is cut into
  segments of ``n_fft`` samples hopping by ``n_fft // 2``; each segment is multiplied by a
  periodic Hann window ``w``; the power ``|rfft(w * x)|^2 / sum(w^2)`` is averaged over all
  segments and all leading indices (batch, channels). Shape ``(n_fft // 2 + 1,)``.
* :func:`expected_tone_frequencies`: for layer ``l`` of a stack with strides ``s_1..s_L``
  and output rate ``fs_out``, the layer's own output rate is
  ``fs_l = fs_out / prod(s_{l+1} .. s_L)`` and its period-``s_l`` pattern sits at
  ``m * fs_l / s_l`` for ``m = 1 .. s_l - 1`` (for one layer or the last one:
  ``m * fs_out / s``), folded into ``[0, fs_out / 2]``. All are multiples of ``fs_out / S``.
* :func:`tone_excess_db`: at each tone bin ``b``, ``10 log10(P[b] / median(R[local]))``
  where ``R`` is the reference spectrum (``P`` itself unless given) and ``local`` is the
  bins within ``halfwidth`` of ``b`` that are not within ``guard`` bins of any multiple of
  ``fs_out / S`` (every possible tone, DC included): the median of the spectral floor
  around the tone. Values are floored at ``FLOOR_DB`` so a perfectly tone-free spectrum
  gives a finite number.
"""

from __future__ import annotations

import math
from typing import NamedTuple, Sequence

import numpy as np

from upsampler.lengths import check_int

FLOOR_DB = -150.0  # excess reported for a tone bin holding (numerically) no power
MEDIAN_HALFWIDTH_BINS = 32  # the local median looks this many bins either side of a tone
TONE_GUARD_BINS = 1  # Hann main lobe: bins this close to a possible tone are not floor


class ToneFrequency(NamedTuple):
    """Where layer ``layer`` (0-based) puts its ``multiple``-th tone, in Hz."""

    layer: int
    multiple: int
    frequency: float


def check_sample_rate(sample_rate: float) -> None:
    """Raise ``ValueError`` unless ``sample_rate`` is a number > 0 (Hz)."""
    if not (isinstance(sample_rate, (int, float)) and sample_rate > 0):
        raise ValueError(f"sample_rate must be a number > 0 Hz, got {sample_rate!r}")


def expected_tone_frequencies(strides: Sequence[int], sample_rate: float) -> list[ToneFrequency]:
    """Tone frequencies of every layer of a stack (module docstring), in layer order."""
    check_sample_rate(sample_rate)
    if len(strides) == 0:
        raise ValueError("strides must name at least one layer, got an empty sequence")
    for stride in strides:
        check_int("stride", stride, 1)
    tones = []
    for layer, stride in enumerate(strides):
        layer_rate = sample_rate / math.prod(strides[layer + 1 :])
        for multiple in range(1, stride):
            frequency = (multiple * layer_rate / stride) % sample_rate
            tones.append(ToneFrequency(layer, multiple, min(frequency, sample_rate - frequency)))
    return tones


def averaged_power_spectrum(signal: np.ndarray, n_fft: int) -> np.ndarray:
    """Welch power spectrum of ``signal (..., N)`` averaged over segments and leading axes."""
    check_int("n_fft", n_fft, 2)
    signal = np.asarray(signal, dtype=np.float64)
    if signal.ndim == 0 or signal.shape[-1] < n_fft:
        raise ValueError(
            f"signal must hold at least n_fft={n_fft} samples on its last axis, got shape "
            f"{signal.shape}"
        )
    hop = n_fft // 2
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)  # periodic Hann
    starts = range(0, signal.shape[-1] - n_fft + 1, hop)
    # (..., N) -> (..., segments, n_fft)
    segments = np.stack([signal[..., start : start + n_fft] for start in starts], axis=-2)
    power = np.abs(np.fft.rfft(segments * window, axis=-1)) ** 2 / np.sum(window**2)
    return power.reshape(-1, power.shape[-1]).mean(axis=0)


def local_floor(
    spectrum: np.ndarray,
    tone_bins: Sequence[int],
    period_bins: int,
    halfwidth: int = MEDIAN_HALFWIDTH_BINS,
    guard: int = TONE_GUARD_BINS,
) -> np.ndarray:
    """Median of ``spectrum`` around each tone bin, off every possible tone (module docstring).

    For bin ``b`` the median runs over the bins within ``halfwidth`` of ``b`` that are more
    than ``guard`` bins from every multiple of ``period_bins`` (DC included). Returns float64
    ``(len(tone_bins),)``; ``ValueError`` for a tone bin outside the spectrum or one with no
    floor bins around it.
    """
    spectrum = np.asarray(spectrum, dtype=np.float64)
    if spectrum.ndim != 1 or len(spectrum) == 0:
        raise ValueError(f"spectrum must be a non-empty 1-D array, got {spectrum.shape}")
    check_int("period_bins", period_bins, 1)
    bins = np.arange(len(spectrum))
    offset = bins % period_bins
    floor_bins = np.minimum(offset, period_bins - offset) > guard
    floors = []
    for tone in tone_bins:
        if not 0 <= tone < len(spectrum):
            raise ValueError(f"tone bin {tone} lies outside the spectrum's {len(spectrum)} bins")
        local = floor_bins & (np.abs(bins - tone) <= halfwidth)
        if not local.any():
            raise ValueError(
                f"no floor bins within halfwidth={halfwidth} of tone bin {tone}; "
                f"use a larger n_fft or halfwidth"
            )
        floors.append(np.median(spectrum[local]))
    return np.asarray(floors, dtype=np.float64)


def tone_excess_db(
    spectrum: np.ndarray,
    tone_bins: Sequence[int],
    period_bins: int,
    reference: np.ndarray | None = None,
    halfwidth: int = MEDIAN_HALFWIDTH_BINS,
    guard: int = TONE_GUARD_BINS,
) -> np.ndarray:
    """Excess in dB of ``spectrum[b]`` over the local median floor, per tone bin ``b``.

    ``period_bins`` is the bin spacing of ``fs_out / S``; bins within ``guard`` of any of
    its multiples are left out of the median. ``reference`` (default ``spectrum``) is the
    spectrum whose floor is used. Returns float64 ``(len(tone_bins),)``.
    """
    spectrum = np.asarray(spectrum, dtype=np.float64)
    reference = spectrum if reference is None else np.asarray(reference, dtype=np.float64)
    if spectrum.ndim != 1 or spectrum.shape != reference.shape or len(spectrum) == 0:
        raise ValueError(
            f"spectrum and reference must be equal-length non-empty 1-D arrays, got "
            f"{spectrum.shape} and {reference.shape}"
        )
    floors = local_floor(reference, tone_bins, period_bins, halfwidth, guard)
    excess = []
    for tone, floor in zip(tone_bins, floors):
        if floor > 0:
            ratio = spectrum[tone] / floor
        else:
            ratio = np.inf if spectrum[tone] > 0 else 0.0
        excess.append(max(10 * np.log10(ratio) if ratio > 0 else FLOOR_DB, FLOOR_DB))
    return np.asarray(excess, dtype=np.float64)
