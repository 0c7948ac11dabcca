"""Effective impulse and frequency response of a linearised stack of upsamplers.

With activations off, a stack of upsamplers with strides ``s_1 .. s_L`` is one linear
multirate filter of total stride ``S = prod(s_l)``: shifting the input by one sample
shifts the output by ``S``, so for input channel ``i`` and output channel ``o``::

    y_o[n] = sum_i sum_t x_i[t] * h[i, o, n - t * S]       (one transposed conv, kernel h)

:func:`stack_response` measures ``h`` by feeding a unit impulse into each input channel
(in the middle of a zero signal, far from the edges) and subtracting the response to the
all-zero input (which removes the biases). It then reports

* ``phase_gains[i, o, r] = sum_j h[i, o, r + j * S]``: the output a constant 1 gives on
  phase ``r`` (the polyphase sums: tap ``k`` lands on phase ``(k * d - p) mod S``);
* ``periodic_component = phase_gains - mean_r(phase_gains)``: the period-``S`` pattern a
  constant input leaves on top of its mean; zero for a tone-free stack;
* ``frequency_response = rfft(h)`` at the output rate. Its value at ``m * fs_out / S`` is
  the DFT of the phase gains, so unequal phase gains are exactly the tones.

A generator (anything with ``ups``) is analysed through its ``ups`` stack only.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np
import torch
from torch import nn

from upsampler.analysis.phase import PhaseImbalance, phase_imbalance
from upsampler.analysis.probe import input_channels, run_module, upsampler_strides
from upsampler.lengths import ceil_div, check_int

FIRST_MARGIN_FRAMES = 2  # input frames of zeros each side of the impulse, doubled as needed
MAX_MARGIN_FRAMES = 1024
EDGE_TOLERANCE = 1e-12  # relative size of the response allowed in the outermost period
PROBE_CHUNK = 64  # impulses (input channels) pushed through the stack at once
MIN_FFT_PERIODS = 8  # the frequency grid holds at least this many bins per fs_out / S


@dataclass(frozen=True)
class StackResponse:
    """Measured linear response of an upsampler stack (see the module docstring).

    Arrays are float64 (``frequency_response`` complex128). ``impulse_response[..., j]``
    is lag ``j - lag_zero``; ``lag_zero`` is a multiple of ``total_stride`` so index ``j``
    sits on phase ``j mod total_stride``.
    """

    strides: tuple[int, ...]
    sample_rate: float
    impulse_response: np.ndarray  # (C_in probed, C_out, L)
    lag_zero: int
    phase_gains: np.ndarray  # (C_in, C_out, S)
    periodic_component: np.ndarray  # (C_in, C_out, S)
    frequencies: np.ndarray  # (F,) Hz
    frequency_response: np.ndarray  # (C_in, C_out, F)

    @property
    def total_stride(self) -> int:
        """``S = prod(strides)``."""
        return math.prod(self.strides)

    @property
    def imbalance(self) -> PhaseImbalance:
        """:func:`phase_imbalance` of ``phase_gains``, per channel pair."""
        return phase_imbalance(self.phase_gains)


def _linear_stack(module: nn.Module) -> nn.Module:
    ups = getattr(module, "ups", None)
    return nn.ModuleList(list(ups)) if isinstance(ups, nn.ModuleList) else module


def _impulse_outputs(
    stack: nn.Module, channels: int, probed: int, margin: int, strides: tuple[int, ...]
) -> np.ndarray:
    """Responses to a unit impulse at frame ``margin`` of input channel ``i < probed``."""
    length = 2 * margin + 1
    dtype = torch.float64
    zero = torch.zeros(1, channels, length, dtype=dtype)
    baseline = run_module(stack, zero, strides)
    outputs = []
    for start in range(0, probed, PROBE_CHUNK):
        count = min(PROBE_CHUNK, probed - start)
        impulses = torch.zeros(count, channels, length, dtype=dtype)
        impulses[torch.arange(count), torch.arange(start, start + count), margin] = 1.0
        outputs.append(run_module(stack, impulses, strides) - baseline)
    return torch.cat(outputs).numpy()  # (probed, C_out, L_in * S)


def stack_response(
    module: nn.Module,
    sample_rate: float = 22050.0,
    strides: Optional[Sequence[int]] = None,
    in_channels: Optional[int] = None,
    max_input_channels: Optional[int] = None,
) -> StackResponse:
    """Impulse/frequency response of ``module`` linearised (see the module docstring).

    ``module``: one upsampler, a Sequential/ModuleList stack, or a generator (its ``ups``).
    ``sample_rate`` is the output rate in Hz. Runs on a float64 CPU copy of the module.
    ``max_input_channels`` probes only the first that many input channels (one impulse
    run per channel: a full V1 stack's 512 take about 20 s in float64 on a busy CPU).
    Raises ``ValueError`` for a non-upsampler, ``sample_rate <= 0`` or a bad stride.
    """
    if not sample_rate > 0:
        raise ValueError(f"sample_rate must be > 0 Hz, got {sample_rate}")
    stack = _linear_stack(module)
    found = upsampler_strides(stack, strides)
    channels = input_channels(stack, in_channels)
    probed = channels
    if max_input_channels is not None:
        probed = min(channels, check_int("max_input_channels", max_input_channels, 1))
    stack = copy.deepcopy(stack).to(device="cpu", dtype=torch.float64)
    hop = math.prod(found)
    margin = FIRST_MARGIN_FRAMES
    while True:
        response = _impulse_outputs(stack, channels, probed, margin, found)
        peak = np.abs(response).max()
        edges = np.abs(np.concatenate([response[..., :hop], response[..., -hop:]], -1)).max()
        if edges <= EDGE_TOLERANCE * peak or peak == 0:
            break
        if margin >= MAX_MARGIN_FRAMES:
            raise ValueError(
                f"the impulse response of {type(module).__name__} reaches beyond "
                f"{MAX_MARGIN_FRAMES} input frames; it is not a finite upsampler stack"
            )
        margin *= 2
    support = np.nonzero(np.abs(response).max(axis=(0, 1)) > EDGE_TOLERANCE * peak)[0]
    first, last = (support[0], support[-1]) if len(support) else (margin * hop, margin * hop)
    lag_zero = ceil_div(margin * hop - first, hop) * hop
    window = response[..., margin * hop - lag_zero : last + 1]
    periods = ceil_div(window.shape[-1], hop)
    padded = np.zeros(window.shape[:2] + (periods * hop,))
    padded[..., : window.shape[-1]] = window
    # (C_in, C_out, periods * S) -> (C_in, C_out, periods, S): one row per period
    gains = padded.reshape(*window.shape[:2], periods, hop).sum(axis=2)
    n_fft = max(periods, MIN_FFT_PERIODS) * hop
    return StackResponse(
        strides=found,
        sample_rate=float(sample_rate),
        impulse_response=window,
        lag_zero=int(lag_zero),
        phase_gains=gains,
        periodic_component=gains - gains.mean(axis=-1, keepdims=True),
        frequencies=np.fft.rfftfreq(n_fft, 1.0 / sample_rate),
        frequency_response=np.fft.rfft(window, n=n_fft, axis=-1),
    )
