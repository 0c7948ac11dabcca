"""Frame-rate lines in the pauses of vocoded speech (copy synthesis of a real utterance).

A generator fed the mel of a near-silent stretch can fill it with a steady comb at every
multiple of its frame rate ``fs / hop`` (a hop-periodic output). :func:`pause_lines`
measures that on an ``input`` utterance and the generator's ``output`` for it (same length,
same rate ``fs``), exactly so:

1. **Pauses** come from the *input* alone: frames of ``hop`` samples whose mean power lies
   more than ``PAUSE_BELOW_PEAK_DB`` below the utterance's loudest frame, in runs of at
   least ``MIN_PAUSE_SECONDS``; each run loses ``PAUSE_GUARD_SECONDS`` at both ends (speech
   decaying into the pause, the generator's receptive field, the file's edges). The other
   frames are the **speech**; their mean power (input) is the speech level.
2. **Spectra**: Welch's method (periodic Hann, ``n_fft = LINE_PERIODS * hop`` so every
   multiple ``m * fs / hop`` falls on bin ``m * LINE_PERIODS``, 50 % overlap) over every
   segment that fits inside a pause, averaged over all of them, for the output (``P_out``)
   and for the input (``P_in``) on the same samples.
3. **Band**: bins above the DC lobe (``bin > TONE_GUARD_BINS``) and strictly below
   ``nyquist`` (the input's own Nyquist frequency ``input_rate / 2``, lower than ``fs / 2``
   when a 16 kHz file was resampled for a 22.05 kHz model: above it the input says nothing).
   Lines: the multiples ``m >= 1`` whose lobe (``bin +- TONE_GUARD_BINS``) lies in the band.
4. **A line** of a spectrum ``P`` at bin ``b``: ``P[b]`` stands at least ``LINE_EXCESS_DB``
   above ``P``'s own local floor ``F[b]`` (median of ``P`` within ``MEDIAN_HALFWIDTH_BINS``
   bins, off every line lobe, in the band; :func:`~upsampler.analysis.spectrum.local_floor`).
   Its power is its lobe's power above that floor: ``sum(P[lobe]) - len(lobe) * F[b]``.
5. Reported fractions are line power over the band's total power (``sum(P[band])``):

   * ``line_fraction``: the output's lines (over the output's own floor) in ``P_out``;
   * ``input_line_fraction``: the same measure on the input, ``P_in`` against the input's
     own local floor: the lines the recording itself holds at those bins (mains hum, a
     recorder's tones), the figure a faithful vocoder's ``line_fraction`` should be near;
   * ``added_fraction``: the output's lines that also stand ``LINE_EXCESS_DB`` above the
     *input's* level at the same bin (``P_out[b] >= P_in[b] * 10^(LINE_EXCESS_DB / 10)``):
     the lines the generator put there. ``added_multiples`` names them (``m``) and
     ``added_levels_db`` gives each one's power (step 4, in signal power: lobe power
     ``* 2 / n_fft`` for the Hann-windowed, ``sum(w^2)``-normalised spectrum) relative to
     the input's speech power, in dB; ``added_level_db`` is their sum (``FLOOR_DB`` when
     there are none).

Averaging over every pause segment keeps what is steady: a comb that holds through the
pauses adds up, a transient does not.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch
from torch import nn

from upsampler.analysis.spectrum import (
    FLOOR_DB,
    MEDIAN_HALFWIDTH_BINS,
    TONE_GUARD_BINS,
    averaged_power_spectrum,
    check_sample_rate,
    local_floor,
)
from upsampler.lengths import check_int

PAUSE_BELOW_PEAK_DB = 25.0  # a pause frame lies at least this far below the loudest frame
MIN_PAUSE_SECONDS = 0.2  # shorter quiet runs (stop closures inside words) are not pauses
PAUSE_GUARD_SECONDS = 0.05  # dropped at both ends of a pause before the spectrum
LINE_PERIODS = 8  # n_fft = LINE_PERIODS * hop: bins fs / (8 hop) apart, lines 8 bins apart
LINE_EXCESS_DB = 6.0  # a line stands this far above its floor (own floor / the input's level)
POWER_PER_DB = 10.0  # dB = 10 log10(power ratio)
ONE_SIDED = 2.0  # an rfft bin above DC holds half of a real signal's power at +-f


@dataclass(frozen=True)
class PauseLines:
    """Result of :func:`pause_lines` (module docstring: what each figure is)."""

    sample_rate: float  # Hz, of input and output
    hop_length: int
    n_fft: int
    nyquist: float  # Hz: the band's upper edge (the input's own Nyquist)
    line_spacing: float  # Hz: fs / hop
    pauses: tuple[tuple[int, int], ...]  # [start, stop) samples analysed, guards removed
    pause_seconds: float
    line_fraction: float  # output's lines over its own floor, of its pause power in the band
    input_line_fraction: float  # input's lines over its own floor, of its pause power
    added_fraction: float  # output's lines also LINE_EXCESS_DB over the input at the bin
    added_multiples: tuple[int, ...]  # m of each added line
    added_levels_db: tuple[float, ...]  # each added line's power re. speech power (dB)
    added_level_db: float  # all added lines' power re. speech power (dB)
    output_pause_db: float  # output's pause power in the band re. speech power (dB)
    input_pause_db: float  # input's pause power in the band re. speech power (dB)

    def as_dict(self) -> dict[str, object]:
        """JSON-ready fields (lists for tuples)."""
        return {
            "sample_rate": self.sample_rate, "hop_length": self.hop_length, "n_fft": self.n_fft,
            "nyquist": self.nyquist, "line_spacing": self.line_spacing,
            "pauses": [list(pause) for pause in self.pauses], "pause_seconds": self.pause_seconds,
            "line_fraction": self.line_fraction, "input_line_fraction": self.input_line_fraction,
            "added_fraction": self.added_fraction, "added_multiples": list(self.added_multiples),
            "added_levels_db": list(self.added_levels_db), "added_level_db": self.added_level_db,
            "output_pause_db": self.output_pause_db, "input_pause_db": self.input_pause_db,
        }


def _decibels(ratio: float) -> float:
    """``10 log10(ratio)`` floored at ``FLOOR_DB`` (a zero ratio included)."""
    return max(POWER_PER_DB * float(np.log10(ratio)), FLOOR_DB) if ratio > 0 else FLOOR_DB


def frame_levels_db(wav: np.ndarray, hop_length: int) -> np.ndarray:
    """Mean power of each whole ``hop_length`` frame of ``wav (L,)``, dB re. the loudest frame."""
    frames = np.asarray(wav, dtype=np.float64)[: len(wav) // hop_length * hop_length]
    power = (frames**2).reshape(-1, hop_length).mean(axis=1)  # (L,) -> (frames, hop) -> (frames,)
    if len(power) == 0 or power.max() <= 0:
        raise ValueError("wav must hold at least one frame with nonzero power")
    with np.errstate(divide="ignore"):
        return POWER_PER_DB * np.log10(power / power.max())


def find_pauses(
    wav: np.ndarray, sample_rate: float, hop_length: int,
    below_peak_db: float = PAUSE_BELOW_PEAK_DB, min_seconds: float = MIN_PAUSE_SECONDS,
    guard_seconds: float = PAUSE_GUARD_SECONDS,
) -> list[tuple[int, int]]:
    """``[start, stop)`` sample ranges of the pauses of ``wav`` (module docstring, step 1)."""
    levels = frame_levels_db(wav, hop_length)
    quiet = np.concatenate([[False], levels < -below_peak_db, [False]])
    edges = np.flatnonzero(np.diff(quiet.astype(np.int8)))  # run starts and ends, alternating
    guard = int(round(guard_seconds * sample_rate))
    pauses = []
    for first, last in zip(edges[::2], edges[1::2]):  # frames [first, last)
        if (last - first) * hop_length >= min_seconds * sample_rate:
            start, stop = first * hop_length + guard, last * hop_length - guard
            if stop > start:
                pauses.append((int(start), int(stop)))
    return pauses


def pause_spectrum(wav: np.ndarray, pauses: list[tuple[int, int]], n_fft: int) -> np.ndarray:
    """Welch spectrum averaged over every ``n_fft`` segment inside the pauses (equal weights)."""
    total, count = 0.0, 0
    for start, stop in pauses:
        length = stop - start
        if length < n_fft:
            continue
        segments = (length - n_fft) // (n_fft // 2) + 1
        total = total + averaged_power_spectrum(wav[start:stop], n_fft) * segments
        count += segments
    if count == 0:
        raise ValueError(f"no pause holds n_fft={n_fft} samples: nothing to measure")
    return total / count


def _lines(spectrum: np.ndarray, line_bins: list[int], period_bins: int,
           ) -> tuple[np.ndarray, np.ndarray]:
    """(is-a-line mask, lobe power above the local floor) per line bin (module docstring, 4)."""
    floors = local_floor(spectrum, line_bins, period_bins, MEDIAN_HALFWIDTH_BINS, TONE_GUARD_BINS)
    lobe = 2 * TONE_GUARD_BINS + 1
    powers = np.array([spectrum[b - TONE_GUARD_BINS: b + TONE_GUARD_BINS + 1].sum()
                       for b in line_bins]) - lobe * floors
    is_line = spectrum[line_bins] >= floors * 10 ** (LINE_EXCESS_DB / POWER_PER_DB)
    return is_line & (powers > 0), np.maximum(powers, 0.0)


def pause_lines(
    input_wav: torch.Tensor | np.ndarray, output_wav: torch.Tensor | np.ndarray,
    sample_rate: float, hop_length: int, input_rate: Optional[float] = None,
) -> PauseLines:
    """Frame-rate lines in the output's pauses against the input's (module docstring).

    ``input_wav`` and ``output_wav`` are ``(L,)`` at ``sample_rate`` Hz; ``input_rate`` is
    the rate the input was recorded at (default ``sample_rate``): the band stops below
    ``min(input_rate, sample_rate) / 2``. ``ValueError`` when no pause holds ``n_fft``
    samples or the signals differ in length.
    """
    check_sample_rate(sample_rate)
    check_int("hop_length", hop_length, 1)
    source = np.asarray(input_wav, dtype=np.float64).reshape(-1)
    output = np.asarray(output_wav, dtype=np.float64).reshape(-1)
    if source.shape != output.shape:
        raise ValueError(f"input and output must have equal lengths, got {source.shape} and "
                         f"{output.shape}")
    rate_in = sample_rate if input_rate is None else input_rate
    check_sample_rate(rate_in)
    nyquist = min(rate_in, sample_rate) / 2
    n_fft = LINE_PERIODS * hop_length
    pauses = find_pauses(source, sample_rate, hop_length)
    out_spectrum = pause_spectrum(output, pauses, n_fft)
    in_spectrum = pause_spectrum(source, pauses, n_fft)
    bin_width = sample_rate / n_fft
    top = int(np.ceil(nyquist / bin_width)) - 1  # last bin strictly below the Nyquist
    band = slice(TONE_GUARD_BINS + 1, top + 1)
    out_band, in_band = out_spectrum[: top + 1], in_spectrum[: top + 1]
    line_bins = [m * LINE_PERIODS for m in range(1, top // LINE_PERIODS + 1)
                 if m * LINE_PERIODS + TONE_GUARD_BINS <= top]
    if not line_bins:
        raise ValueError(f"no multiple of fs/hop={sample_rate / hop_length:.1f} Hz lies below "
                         f"{nyquist:.1f} Hz")
    out_line, out_power = _lines(out_band, line_bins, LINE_PERIODS)
    in_line, in_power = _lines(in_band, line_bins, LINE_PERIODS)
    above_input = out_band[line_bins] >= in_band[line_bins] * 10 ** (LINE_EXCESS_DB / POWER_PER_DB)
    added = out_line & above_input
    out_total, in_total = out_spectrum[band].sum(), in_spectrum[band].sum()
    levels = frame_levels_db(source, hop_length)
    speech_frames = levels >= -PAUSE_BELOW_PEAK_DB
    frames = source[: len(levels) * hop_length].reshape(-1, hop_length)
    speech_power = float((frames[speech_frames] ** 2).mean())
    to_signal = ONE_SIDED / n_fft  # lobe power of the normalised spectrum -> signal power
    added_powers = out_power[added] * to_signal
    return PauseLines(
        sample_rate=float(sample_rate), hop_length=hop_length, n_fft=n_fft,
        nyquist=float(nyquist), line_spacing=sample_rate / hop_length,
        pauses=tuple(pauses), pause_seconds=sum(b - a for a, b in pauses) / sample_rate,
        line_fraction=float(out_power[out_line].sum() / out_total) if out_total > 0 else 0.0,
        input_line_fraction=float(in_power[in_line].sum() / in_total) if in_total > 0 else 0.0,
        added_fraction=float(out_power[added].sum() / out_total) if out_total > 0 else 0.0,
        added_multiples=tuple(int(b // LINE_PERIODS) for b, a in zip(line_bins, added) if a),
        added_levels_db=tuple(_decibels(p / speech_power) for p in added_powers),
        added_level_db=_decibels(float(added_powers.sum()) / speech_power),
        output_pause_db=_decibels(out_total * to_signal / speech_power),
        input_pause_db=_decibels(in_total * to_signal / speech_power),
    )


@torch.no_grad()
def vocoded_pause_lines(generator: nn.Module, mel_transform: nn.Module,
                        path: Optional[str] = None) -> PauseLines:
    """:func:`pause_lines` of ``generator``'s copy synthesis of the recording at ``path``.

    ``path`` defaults to the bundled speech (``upsampler.audio.BUNDLED_SPEECH``); it is read
    at ``mel_transform.sample_rate`` and its own file rate bounds the band. The generator
    runs in eval mode and is put back in its mode afterwards.
    """
    from upsampler.audio import BUNDLED_SPEECH, copy_synthesis, file_sample_rate, load_audio

    path = BUNDLED_SPEECH if path is None else path
    sample_rate = int(mel_transform.sample_rate)
    wav = load_audio(path, sample_rate)
    was_training = generator.training
    generator.eval()
    try:
        parameter = next(generator.parameters())
        output = copy_synthesis(generator, mel_transform.to(parameter.device),
                                wav.to(parameter))
    finally:
        generator.train(was_training)
    return pause_lines(wav, output.double().cpu(), sample_rate, int(generator.hop_length),
                       input_rate=file_sample_rate(path))


__all__ = ["LINE_EXCESS_DB", "LINE_PERIODS", "MIN_PAUSE_SECONDS", "PAUSE_BELOW_PEAK_DB",
           "PAUSE_GUARD_SECONDS", "PauseLines", "find_pauses", "frame_levels_db",
           "pause_lines", "pause_spectrum", "vocoded_pause_lines"]
