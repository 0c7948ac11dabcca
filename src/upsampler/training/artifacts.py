"""Upsampling artifacts of a generator while it trains: tonal excess and probe-mel spectra.

:func:`tonal_excess` runs :func:`upsampler.analysis.tonal.tonal_artifacts` on a generator
``(B, num_mels, T) -> (B, 1, T * hop)`` with a short probe (a constant mel and a white-noise
mel, seeded) and returns the two figures a training log tracks:

* ``tonal_constant_db``: the loudest line of the constant probe over the generator's
  own white-noise floor (``TonalReport.summary_db``);
* ``tonal_noise_db``: the loudest line in the white-noise output over its local
  median (``TonalReport.noise_summary_db``).

Lines are looked for at every multiple of ``fs / S`` (``S`` = the hop), which holds every
layer's own tones ``m * fs_l / s_l``; both probes are at level 1.0 (constant value, noise
standard deviation). The noise probe runs ``PROBE_SEGMENTS`` Welch segments
(``n_fft = 1600`` samples at hop 200: 32 + 32 frames, 0.4 s of output), a few tens of
milliseconds for the demo generator, so every validation can afford it.

:func:`probe_mels` names the mels the study's spectra use: the mel of silence (filled with
``log(1e-5)``, what a log-mel front end clamped at ``1e-5`` gives for digital silence) and a
constant mid-level mel; :func:`probe_spectrum` is a generator's output spectrum for one of
them, :func:`probe_tonal_excess` the tonal excess with the constant probe at that level.

:func:`probe_level_dbfs` is the absolute level of a generator's output for a probe mel (RMS
in dB re. full scale 1.0): for the silence mel the lines at multiples of ``fs / hop`` are
guaranteed (a constant mel in, a hop-periodic waveform out), so their excess over a
near-empty floor says little and this level is what a listener hears.
:func:`pause_line_probe` logs :func:`upsampler.analysis.pause_lines.vocoded_pause_lines` on
the bundled speech recording beside the tonal figures.

Aliasing (``upsampler.analysis.aliasing``) is not tracked here: it drives a block with a
pure tone and counts every output component that is not the tone or one of its harmonics
as unwanted. A generator's input is a mel and its output a waveform whose wanted content is
not the input tone, so for a whole generator that ratio measures the speech it makes, not
its aliases.
"""

from __future__ import annotations

import logging
import math

import numpy as np
import torch
from torch import nn

from upsampler.analysis.pause_lines import vocoded_pause_lines
from upsampler.analysis.spectrum import averaged_power_spectrum, expected_tone_frequencies
from upsampler.analysis.tonal import EDGE_FRAMES, default_fft_size, tonal_artifacts
from upsampler.lengths import ceil_div, check_int

PROBE_SEGMENTS = 4  # Welch segments of the white-noise probe (tonal_artifacts uses 16)
SILENCE_LOG_LEVEL = math.log(1e-5)  # log-mel of digital silence with a 1e-5 clamp, about -11.51
MID_LOG_LEVEL = -5.0  # a constant mid-level log-mel: between silence and loud speech (about +2)
TONAL_KEYS = ("tonal_constant_db", "tonal_noise_db")
PAUSE_KEYS = ("pause_line_fraction", "pause_added_fraction", "pause_input_line_fraction")
LEVEL_FRAMES = 2 * EDGE_FRAMES + 32  # frames of the probe mel whose output level is measured
DB_PER_DECADE_AMPLITUDE = 20.0  # dB = 20 log10(amplitude ratio)
FULL_SCALE = 1.0  # the waveform's full scale: dBFS is re. an RMS of 1.0
LEVEL_FLOOR_DBFS = -400.0  # reported for an exactly silent output

log = logging.getLogger(__name__)


def _probe_frames(hop: int, segments: int) -> int:
    """Input frames for ``segments`` Welch segments plus the dropped edges."""
    check_int("segments", segments, 1)
    return 2 * EDGE_FRAMES + ceil_div(segments * default_fft_size(hop), hop)


def probe_frames_needed(hop: int) -> int:
    """The fewest mel frames :func:`probe_spectrum` accepts for a generator of total ``hop``."""
    return _probe_frames(hop, 1)


@torch.no_grad()
def tonal_excess(generator: nn.Module, sample_rate: float, segments: int = PROBE_SEGMENTS,
                 seed: int = 0) -> dict[str, float]:
    """``{"tonal_constant_db", "tonal_noise_db"}`` of ``generator`` (module docstring).

    The generator is measured in eval mode and put back in its mode afterwards.
    """
    hop = math.prod(generator.upsample_rates)
    was_training = generator.training
    generator.eval()
    try:
        report = tonal_artifacts(generator, sample_rate, num_frames=_probe_frames(hop, segments),
                                 seed=seed)
    finally:
        generator.train(was_training)
    return {"tonal_constant_db": report.summary_db, "tonal_noise_db": report.noise_summary_db}


def probe_mels(num_mels: int, num_frames: int) -> dict[str, torch.Tensor]:
    """``{"silence", "constant"}``: ``(num_mels, num_frames)`` mels at the two constant levels."""
    check_int("num_mels", num_mels, 1)
    check_int("num_frames", num_frames, 1)
    return {"silence": torch.full((num_mels, num_frames), SILENCE_LOG_LEVEL),
            "constant": torch.full((num_mels, num_frames), MID_LOG_LEVEL)}


PROBE_LEVELS = {"silence": SILENCE_LOG_LEVEL, "constant": MID_LOG_LEVEL}


@torch.no_grad()
def probe_output(generator: nn.Module, mel: torch.Tensor) -> torch.Tensor:
    """``generator(mel)`` in eval mode for a mel ``(M, T)``, as float64 ``(T * hop,)`` less
    ``EDGE_FRAMES * hop`` samples at each end (boundary effects are not the probe's)."""
    was_training = generator.training
    generator.eval()
    try:
        wav = generator(mel.unsqueeze(0).to(next(generator.parameters())))[0, 0]  # (1, M, T)
    finally:
        generator.train(was_training)
    edge = EDGE_FRAMES * math.prod(generator.upsample_rates)
    return wav[edge: wav.shape[-1] - edge].double()


def probe_spectrum(generator: nn.Module, mel: torch.Tensor, sample_rate: float,
                   ) -> tuple[np.ndarray, np.ndarray]:
    """(frequencies in Hz, power) of ``generator(mel)`` for a mel ``(M, T)``, edges dropped.

    Welch average with ``n_fft`` a multiple of the hop (every expected tone on a bin);
    ``T`` must exceed ``2 * EDGE_FRAMES + n_fft / hop`` frames.
    """
    hop = math.prod(generator.upsample_rates)
    n_fft = default_fft_size(hop)
    if mel.dim() != 2 or mel.shape[-1] * hop - 2 * EDGE_FRAMES * hop < n_fft:
        raise ValueError(f"mel must be (num_mels, T) with T >= {_probe_frames(hop, 1)} frames, "
                         f"got shape {tuple(mel.shape)}")
    power = averaged_power_spectrum(probe_output(generator, mel).cpu().numpy(), n_fft)
    return np.fft.rfftfreq(n_fft, 1.0 / sample_rate), power


def probe_tonal_excess(generator: nn.Module, sample_rate: float, level: float,
                       segments: int = PROBE_SEGMENTS) -> float:
    """Tonal excess (dB) with the constant probe at ``level`` and white noise of equal power."""
    hop = math.prod(generator.upsample_rates)
    was_training = generator.training
    generator.eval()
    try:
        report = tonal_artifacts(generator, sample_rate, num_frames=_probe_frames(hop, segments),
                                 constant_value=level, noise_std=abs(level))
    finally:
        generator.train(was_training)
    return report.summary_db


@torch.no_grad()
def probe_level_dbfs(generator: nn.Module, mel: torch.Tensor) -> float:
    """RMS of ``generator(mel)`` for a mel ``(M, T)``, ``EDGE_FRAMES * hop`` samples dropped
    at each end, in dB re. full scale 1.0 (``LEVEL_FLOOR_DBFS`` for an all-zero output)."""
    if mel.dim() != 2 or mel.shape[-1] <= 2 * EDGE_FRAMES:
        raise ValueError(f"mel must be (num_mels, T) with T > {2 * EDGE_FRAMES} frames, got "
                         f"shape {tuple(mel.shape)}")
    rms = float(probe_output(generator, mel).square().mean().sqrt())
    if rms <= 0:
        return LEVEL_FLOOR_DBFS
    return DB_PER_DECADE_AMPLITUDE * math.log10(rms / FULL_SCALE)


def silence_level_dbfs(generator: nn.Module, num_mels: int) -> float:
    """:func:`probe_level_dbfs` for the mel of digital silence (every bin ``log(1e-5)``)."""
    return probe_level_dbfs(generator, probe_mels(num_mels, LEVEL_FRAMES)["silence"])


def pause_line_probe(generator: nn.Module, mel_transform: nn.Module) -> dict[str, float | None]:
    """``PAUSE_KEYS`` of the generator's copy synthesis of the bundled speech recording.

    ``pause_line_fraction`` / ``pause_input_line_fraction``: share of the output's / the
    input's pause power in lines at multiples of ``fs / hop``; ``pause_added_fraction``: in
    those lines that also stand 6 dB over the input (``upsampler.analysis.pause_lines``).
    None, with one warning, when the recording cannot be measured at this front end.
    """
    try:
        found = vocoded_pause_lines(generator, mel_transform)
    except ValueError as error:
        log.warning("pause lines not measured: %s", error)
        return dict.fromkeys(PAUSE_KEYS)
    return {"pause_line_fraction": found.line_fraction,
            "pause_added_fraction": found.added_fraction,
            "pause_input_line_fraction": found.input_line_fraction}


def tone_frequencies(generator: nn.Module, sample_rate: float) -> np.ndarray:
    """Distinct expected tone frequencies (Hz, ascending) of the generator's upsampling layers."""
    tones = expected_tone_frequencies(tuple(generator.upsample_rates), sample_rate)
    return np.unique([tone.frequency for tone in tones])


__all__ = ["MID_LOG_LEVEL", "PAUSE_KEYS", "PROBE_LEVELS", "PROBE_SEGMENTS", "SILENCE_LOG_LEVEL",
           "TONAL_KEYS", "pause_line_probe", "probe_frames_needed", "probe_level_dbfs",
           "probe_mels", "probe_spectrum", "probe_tonal_excess", "silence_level_dbfs",
           "tonal_excess", "tone_frequencies"]
