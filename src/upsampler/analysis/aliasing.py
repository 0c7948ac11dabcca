"""Aliasing of a block: a pure tone in, the energy at unwanted frequencies out, in dB.

A tone at ``f0`` (cycles per input sample) goes into every input channel of a block that
maps ``(B, C_in, T) -> (B, C_out, T * stride)`` (``stride`` 1 for an activation or a
residual block, 2 for an upsampler stage). A memoryless nonlinearity makes harmonics
``k f0``; those above the output Nyquist fold back (aliases), and an upsampler leaves images
at ``m / T_in +- f0``. The wanted components are DC, the tone and its harmonics *below* the
output Nyquist; everything else is unwanted::

    aliasing_db = 10 log10( sum P[unwanted bins] / sum P[wanted bins] )

where ``P`` is the output power spectrum summed over channels. The tone is coherent: it
makes exactly ``k0`` cycles in ``N`` input samples, so in steady state every component
(harmonic, alias, image) falls on an integer bin of the ``N * stride``-point FFT of the
output and a rectangular window leaks nothing. ``margin`` input samples either side keep
the edges' transients (zero or replicate padding) out of the analysed span.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from torch import nn

from upsampler.lengths import check_int

DEFAULT_FFT_SIZE = 1024  # input samples analysed; bins of fs_in / 1024
DEFAULT_MARGIN = 256  # input samples either side discarded (receptive fields are shorter)
POWER_EPS = 1e-30  # keeps the ratio finite for a block with no unwanted energy at all
NYQUIST = 0.5  # cycles per sample


@dataclass(frozen=True)
class AliasingReport:
    """One tone through one block: the measure and the spectrum it came from."""

    frequency: float  # the tone actually used, cycles per input sample (k0 / N)
    aliasing_db: float  # unwanted / wanted energy, dB
    stride: int  # output samples per input sample
    frequencies: np.ndarray  # bin frequencies, cycles per *input* sample, (N * stride // 2 + 1,)
    power: np.ndarray  # output power per bin, summed over channels
    wanted: np.ndarray  # bool mask of the wanted bins (DC, tone, harmonics below Nyquist)


def nearest_odd_bin(frequency: float, fft_size: int) -> int:
    """The odd bin ``k0`` nearest ``frequency * fft_size``, below ``fft_size / 2``.

    With a power-of-two ``fft_size`` an odd ``k0`` keeps folded harmonics off the wanted
    bins: ``(j + k) k0`` is a multiple of the output FFT size only for harmonics that far up.
    (An even one does not: a tone at 0.25 folds its 3rd harmonic onto itself.)
    """
    k0 = 2 * math.floor(frequency * fft_size / 2) + 1
    return min(max(k0, 1), fft_size // 2 - 1)


def wanted_bins(tone_bin: int, num_bins: int) -> np.ndarray:
    """Mask of DC and every multiple of ``tone_bin`` below ``num_bins`` (unfolded harmonics)."""
    check_int("tone_bin", tone_bin, 1)
    mask = np.zeros(num_bins, dtype=bool)
    mask[::tone_bin] = True
    return mask


def tone_aliasing(
    module: nn.Module,
    frequency: float,
    in_channels: int,
    stride: int = 1,
    amplitude: float = 1.0,
    fft_size: int = DEFAULT_FFT_SIZE,
    margin: int = DEFAULT_MARGIN,
) -> AliasingReport:
    """Drive ``module`` with a tone of ``frequency`` cycles per input sample (module docstring).

    The tone is moved to the nearest odd bin ``k0 / fft_size`` (``nearest_odd_bin``);
    ``stride`` is the module's upsampling factor (checked against its output length).
    """
    if not 0.0 < frequency < NYQUIST:
        raise ValueError(f"frequency must be in (0, 0.5) cycles per sample, got {frequency}")
    check_int("in_channels", in_channels, 1)
    check_int("stride", stride, 1)
    check_int("fft_size", fft_size, 8)
    check_int("margin", margin, 0)
    tone_bin = nearest_odd_bin(frequency, fft_size)
    n = torch.arange(-margin, fft_size + margin, dtype=torch.float64)
    tone = amplitude * torch.sin(2 * math.pi * tone_bin / fft_size * n)
    parameter = next(module.parameters(), None)
    dtype = parameter.dtype if parameter is not None else torch.get_default_dtype()
    x = tone.to(dtype).expand(1, in_channels, -1)  # (T,) -> (1, C_in, T)
    with torch.no_grad():
        y = module(x)
    expected = (fft_size + 2 * margin) * stride
    if y.dim() != 3 or y.shape[-1] != expected:
        raise ValueError(
            f"stride={stride}: module output shape {tuple(y.shape)} does not end in "
            f"{expected} = (fft_size + 2 * margin) * stride samples"
        )
    span = y[0, :, margin * stride : (margin + fft_size) * stride].double().numpy()
    power = (np.abs(np.fft.rfft(span, axis=-1)) ** 2).sum(axis=0)
    wanted = wanted_bins(tone_bin, power.shape[0])
    ratio = (power[~wanted].sum() + POWER_EPS) / (power[wanted].sum() + POWER_EPS)
    return AliasingReport(
        frequency=tone_bin / fft_size,
        aliasing_db=float(10 * math.log10(ratio)),
        stride=stride,
        frequencies=np.arange(power.shape[0]) / (fft_size * stride) * stride,
        power=power,
        wanted=wanted,
    )


def aliasing_sweep(
    module: nn.Module,
    frequencies: Sequence[float],
    in_channels: int,
    stride: int = 1,
    amplitude: float = 1.0,
    fft_size: int = DEFAULT_FFT_SIZE,
    margin: int = DEFAULT_MARGIN,
) -> list[AliasingReport]:
    """``tone_aliasing`` at each of ``frequencies`` (a stepped sine sweep)."""
    if len(frequencies) == 0:
        raise ValueError("frequencies must list at least one frequency, got []")
    return [
        tone_aliasing(module, f, in_channels, stride, amplitude, fft_size, margin)
        for f in frequencies
    ]


def mean_aliasing_db(reports: Sequence[AliasingReport]) -> float:
    """Energy-average of a sweep: ``10 log10(mean(10 ** (dB / 10)))``."""
    if len(reports) == 0:
        raise ValueError("reports must hold at least one AliasingReport, got []")
    return float(10 * math.log10(np.mean([10 ** (r.aliasing_db / 10) for r in reports])))
