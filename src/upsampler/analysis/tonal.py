"""Tonal-artifact measure: white noise and a constant through a model, tones over the floor.

:func:`tonal_artifacts` computes, for ``module`` (an upsampler, a stack, or a whole
generator ``(B, num_mels, T) -> (B, 1, T * hop)``), exactly this:

1. Two probes on all ``C_in`` input channels, in the module's dtype and device: white
   noise ``N(0, noise_std^2)`` (``noise_batch`` draws of ``num_frames`` frames, seeded) and
   the constant ``constant_value`` (same power when ``constant_value == noise_std``). The
   constant's output is exactly periodic (period ``S``) away from the edges for any
   shift-equivariant model, so it only runs on
   ``min(num_frames, 2 * edge_frames + 2 * n_fft / S)`` frames: identical spectrum, less time.
2. Each output ``(B, C_out, T * S)``, ``S = prod(strides)``, loses ``edge_frames * S``
   samples at both ends (boundary effects are not tones).
3. :func:`~upsampler.analysis.spectrum.averaged_power_spectrum` of each (Welch, periodic
   Hann, ``n_fft`` a multiple of ``S`` so every tone falls on a bin, 50% overlap, averaged
   over batch, channels and segments).
4. For every expected tone ``m * fs_l / s_l`` of every layer
   (:func:`~upsampler.analysis.spectrum.expected_tone_frequencies`):
   ``noise_excess_db`` = noise spectrum at the tone over the local median of the noise
   spectrum, and ``constant_excess_db`` = constant spectrum at the tone over the same
   noise-spectrum median (the constant's own spectrum is pure lines with no floor of its
   own). Both are :func:`~upsampler.analysis.spectrum.tone_excess_db`, floored at -150 dB.
5. ``period_excess_db`` repeats the constant-probe measure at every multiple
   ``m * fs_out / S`` (``m = 1 .. S // 2``): a stack's constant output has period ``S``,
   so its lines may sit at any of them, not only at the per-layer frequencies.
6. The summary figure per model, ``summary_db`` (the tonal figure), is the largest
   ``period_excess_db``: every multiple of the first layer's rate ``fs_out / S`` counts,
   not only each layer's own tones (``layer_summary_db`` keeps that older, never larger,
   figure). It is how far the loudest line a constant input produces stands above the
   model's own broadband response to white noise of equal power. Above 0 dB the line
   is audible over that floor; tone-free models sit near the -150 dB floor.
   ``noise_summary_db`` is the same for the noise probe over its own median
   (``noise_period_excess_db``).

The probe level is part of the figure: ``constant_value`` and ``noise_std`` are kept in the
report. A linear stack's figure does not depend on it (both probes scale alike); a whole
generator's does (biases and leaky ReLUs: a constant at a mel's silence level, ``log(1e-5)``,
is not a scaled constant at 1.0). At random initialisation the model's seed moves the
figure by several dB; for fixed weights the noise seed only moves the floor's median.

The numbers depend on ``n_fft`` (a line's bin power grows with ``n_fft``, the noise
floor's does not) and, for the constant probe, on the channel count (the constant adds
coherently over input channels, noise does not): compare models at equal settings.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import NamedTuple, Optional, Sequence

import numpy as np
import torch
from torch import nn

from upsampler.analysis.probe import (
    input_channels,
    module_device,
    module_dtype,
    run_module,
    upsampler_strides,
)
from upsampler.analysis.spectrum import (
    FLOOR_DB,
    averaged_power_spectrum,
    check_sample_rate,
    expected_tone_frequencies,
    tone_excess_db,
)
from upsampler.lengths import ceil_div, check_int

EDGE_FRAMES = 16  # input frames of output dropped at each end before the spectrum
MIN_FFT_SIZE = 512  # n_fft is the smallest multiple of 8 * S at least this long
FFT_PERIODS = 8  # n_fft holds at least this many periods S: 8 bins between tones
SEGMENTS = 16  # default num_frames leaves room for this many n_fft-long segments
CONSTANT_SEGMENTS = 2  # segments' worth of frames the (periodic) constant probe runs on


class ToneExcess(NamedTuple):
    """One expected tone and how far it stands above the local floor, in dB."""

    layer: int
    multiple: int
    frequency: float
    noise_excess_db: float
    constant_excess_db: float


@dataclass(frozen=True)
class TonalReport:
    """Result of :func:`tonal_artifacts` (see the module docstring for each step)."""

    sample_rate: float
    strides: tuple[int, ...]
    n_fft: int
    frequencies: np.ndarray  # (F,) Hz
    noise_spectrum: np.ndarray  # (F,) averaged power, white-noise probe
    constant_spectrum: np.ndarray  # (F,) averaged power, constant probe
    tones: tuple[ToneExcess, ...]
    period_excess_db: np.ndarray  # (S // 2,) constant probe at m * fs_out / S, m = 1 .. S // 2
    noise_period_excess_db: np.ndarray  # (S // 2,) noise probe at the same multiples
    constant_value: float = 1.0  # the constant probe's value
    noise_std: float = 1.0  # the white-noise probe's standard deviation

    @property
    def summary_db(self) -> float:
        """The tonal figure: largest ``period_excess_db`` (every multiple of ``fs_out / S``)."""
        return float(np.max(self.period_excess_db, initial=FLOOR_DB))

    @property
    def period_summary_db(self) -> float:
        """Same as :attr:`summary_db` (kept for callers of the earlier name)."""
        return self.summary_db

    @property
    def layer_summary_db(self) -> float:
        """Largest ``constant_excess_db`` over each layer's own expected tones only."""
        return max((tone.constant_excess_db for tone in self.tones), default=FLOOR_DB)

    @property
    def noise_summary_db(self) -> float:
        """Largest ``noise_period_excess_db``: the noise probe at every multiple."""
        return float(np.max(self.noise_period_excess_db, initial=FLOOR_DB))

    @property
    def tone_frequencies(self) -> np.ndarray:
        """Distinct expected tone frequencies in Hz, ascending."""
        return np.unique([tone.frequency for tone in self.tones])


def default_fft_size(total_stride: int) -> int:
    """Smallest multiple of ``FFT_PERIODS * total_stride`` that is ``>= MIN_FFT_SIZE``."""
    step = FFT_PERIODS * check_int("total_stride", total_stride, 1)
    return ceil_div(MIN_FFT_SIZE, step) * step


def tonal_artifacts(
    module: nn.Module,
    sample_rate: float = 22050.0,
    strides: Optional[Sequence[int]] = None,
    in_channels: Optional[int] = None,
    num_frames: Optional[int] = None,
    n_fft: Optional[int] = None,
    edge_frames: int = EDGE_FRAMES,
    noise_batch: int = 1,
    noise_std: float = 1.0,
    constant_value: float = 1.0,
    seed: int = 0,
    dtype: Optional[torch.dtype] = None,
) -> TonalReport:
    """Tone excess of ``module`` at every expected tone frequency (module docstring).

    ``sample_rate`` is the output rate in Hz. ``strides`` / ``in_channels`` default to
    what the module says (``upsampler_strides`` / ``input_channels``). ``num_frames``
    defaults to ``2 * edge_frames`` plus room for 16 segments; ``n_fft`` to
    :func:`default_fft_size`. ``dtype`` (e.g. ``torch.float64``) runs a converted copy of
    the module instead of the module itself: use it when the input's contribution at the
    output falls below float32 rounding (tiny untrained models). Raises ``ValueError`` for
    a module that is not an upsampler, a stride < 1, ``sample_rate <= 0``, or a probe with
    no samples left.
    """
    check_sample_rate(sample_rate)
    found = upsampler_strides(module, strides)
    channels = input_channels(module, in_channels)
    hop = math.prod(found)
    n_fft = default_fft_size(hop) if n_fft is None else check_int("n_fft", n_fft, 2)
    if n_fft % hop != 0:
        raise ValueError(f"n_fft must be a multiple of prod(strides)={hop}, got {n_fft}")
    check_int("edge_frames", edge_frames, 0)
    check_int("noise_batch", noise_batch, 1)
    if num_frames is None:
        num_frames = 2 * edge_frames + ceil_div(SEGMENTS * n_fft, hop)
    check_int("num_frames", num_frames, 1)
    kept = (num_frames - 2 * edge_frames) * hop
    if kept < n_fft:
        raise ValueError(
            f"num_frames={num_frames} leaves {max(kept, 0)} output samples after dropping "
            f"edge_frames={edge_frames} at each end; need at least n_fft={n_fft}, i.e. "
            f"num_frames >= {2 * edge_frames + ceil_div(n_fft, hop)}"
        )
    if dtype is not None and dtype != module_dtype(module):
        module = copy.deepcopy(module).to(dtype=dtype)
    factory = {"dtype": module_dtype(module), "device": module_device(module)}
    generator = torch.Generator().manual_seed(seed)
    noise = torch.randn(noise_batch, channels, num_frames, generator=generator) * noise_std
    # the constant probe's output is exactly period-S once the edges are gone, so a few
    # segments show all of it: it runs on CONSTANT_SEGMENTS segments' worth of frames
    constant_frames = min(num_frames, 2 * edge_frames + CONSTANT_SEGMENTS * ceil_div(n_fft, hop))
    constant = torch.full((1, channels, constant_frames), float(constant_value))
    edge = edge_frames * hop
    spectra = []
    for probe in (noise, constant):
        output = run_module(module, probe.to(**factory), found)
        kept_output = output[..., edge : output.shape[-1] - edge]
        spectra.append(averaged_power_spectrum(kept_output.double().cpu().numpy(), n_fft))
    noise_spectrum, constant_spectrum = spectra
    expected = expected_tone_frequencies(found, sample_rate)
    bin_width = sample_rate / n_fft
    tone_bins = [int(round(tone.frequency / bin_width)) for tone in expected]
    period_bins = n_fft // hop
    noise_excess = tone_excess_db(noise_spectrum, tone_bins, period_bins)
    constant_excess = tone_excess_db(
        constant_spectrum, tone_bins, period_bins, reference=noise_spectrum
    )
    period_bins_all = [m * period_bins for m in range(1, hop // 2 + 1)]
    period_excess = tone_excess_db(
        constant_spectrum, period_bins_all, period_bins, reference=noise_spectrum
    )
    noise_period_excess = tone_excess_db(noise_spectrum, period_bins_all, period_bins)
    tones = tuple(
        ToneExcess(tone.layer, tone.multiple, tone.frequency, float(n), float(c))
        for tone, n, c in zip(expected, noise_excess, constant_excess)
    )
    return TonalReport(
        sample_rate=float(sample_rate),
        strides=found,
        n_fft=n_fft,
        frequencies=np.fft.rfftfreq(n_fft, 1.0 / sample_rate),
        noise_spectrum=noise_spectrum,
        constant_spectrum=constant_spectrum,
        tones=tones,
        period_excess_db=period_excess,
        noise_period_excess_db=noise_period_excess,
        constant_value=float(constant_value),
        noise_std=float(noise_std),
    )
