"""Sliding-window filters on a padded input, streamed: convs, subpixel, resize, resamplers.

A module computing ``valid(pad(x))``, ``valid`` a sliding-window op, maps ``L`` (padded)
samples to ``((L - span) // hop + 1) * up`` samples: window ``w`` reads padded samples
``[w * hop, w * hop + span)`` and gives ``up`` outputs. ``pad_mode`` "zeros" or "replicate"
(the first / last sample repeated) fills ``pad_left`` samples before the input and
``pad_right`` after it::

    padded input  [ pad_left | x_0 ... x_(N-1) | pad_right ]
    window w      [w*hop ........ w*hop + span)  ->  outputs [w*up, (w + 1)*up)

The stream keeps the last ``held`` input samples (``span - hop`` plus the alignment that
puts its windows on the offline grid), so each step of ``m`` samples computes ``m / hop``
windows. Where a window reaches before the input's first sample or past its last one
(warm-up and flush), :func:`fill_outside` writes the padding the offline ``forward`` would
have there.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Callable, Optional

import torch
from torch import Tensor, nn

from upsampler.lengths import effective_kernel_size
from upsampler.streaming.protocol import Clock, Context, Position, State, Stream, simplest
from upsampler.streaming.short_conv import TapWeights, conv1d_for_stream
from upsampler.streaming.streams import Plan

PAD_MODES = ("zeros", "replicate")


def fill_outside(window: Tensor, clock: Clock, stride_in: Fraction, back: int,
                 mode: str) -> Tensor:
    """``window`` (its first sample ``back`` before ``clock.position * stride_in``) with
    every position outside ``[0, clock.end)`` replaced by zero (``mode="zeros"``) or the
    nearest edge sample inside (``"replicate"``). Python ints slice; under capture
    (``clock.lines``) masks select."""
    width, end = window.shape[-1], clock.end
    if clock.lines is not None:
        if mode == "zeros" and clock.exact:
            return torch.where(clock.lines.inside(stride_in, back, width), window, 0.0)
        positions = clock.lines.window(stride_in, back, width)
        if not clock.exact:
            end = clock.end
        else:
            end = clock.lines.end * stride_in.numerator // stride_in.denominator
        if mode == "zeros":
            return torch.where((positions >= 0) & (positions < end), window, 0.0)
        start = positions[:1]
        first = window.index_select(-1, (-start).clamp(0, width - 1))
        last = window.index_select(-1, (end - 1 - start).clamp(0, width - 1))
        return torch.where(positions < 0, first, torch.where(positions >= end, last, window))
    start = clock.start(stride_in, back)
    lo, hi = min(max(-start, 0), width), min(max(end - start, 0), width)
    if lo == 0 and hi == width:
        return window
    batch, channels, _ = window.shape
    middle = window[:, :, lo:hi]
    if mode == "zeros" or hi <= lo:  # a window with no real sample feeds only warm-up output
        before = window.new_zeros((batch, channels, lo))
        after = window.new_zeros((batch, channels, width - max(hi, lo)))
    else:
        before = middle[:, :, :1].expand(batch, channels, lo)
        after = middle[:, :, -1:].expand(batch, channels, width - hi)
    return torch.cat([before, middle, after], dim=-1)


class PaddedFilterStream(Stream):
    """A module computing ``valid(pad(x))`` (see the module docstring), step by step."""

    def __init__(
        self,
        valid: Callable[[Tensor], Tensor],
        out_channels: int,
        span: int,
        pad_left: int,
        pad_right: int,
        pad_mode: str = "zeros",
        hop: int = 1,
        up: int = 1,
        in_channels: Optional[int] = None,
    ) -> None:
        if pad_mode not in PAD_MODES:
            raise ValueError(f"pad_mode must be one of {PAD_MODES}, got {pad_mode!r}")
        self.valid, self.out_channels, self.in_channels = valid, out_channels, in_channels
        self.span, self.hop, self.up = span, hop, up
        self.pad_left, self.pad_right, self.pad_mode = pad_left, pad_right, pad_mode
        # an output's window ends in the chunk that emits it; with pad_left < span it ends at
        # or past the output's own position, so a chunk wholly before 0 emits only warm-up
        self.skips_warmup = pad_mode == "zeros" and pad_left < span
        stride = Fraction(up, hop)
        self.context = Context(
            simplest(stride), simplest(up - 1 + pad_left * stride),
            simplest((span - 1 - pad_left) * stride),
        )

    def plan(self, stride_in: Fraction, delay_in: int, channels: Optional[int]) -> Plan:
        hop, least = self.hop, self.span - self.hop
        # the window grid starts at padded 0, input -pad_left: held aligns the buffer to it
        self.held = least + (self.pad_left - delay_in - least) % hop
        self.channels = channels if channels is not None else self.in_channels
        self.stride_in, self.delay_in = stride_in, delay_in
        self.back = delay_in + self.held  # the window starts this far before position * rate
        self.quantum = (stride_in / hop).denominator
        self.warmup = math.ceil((delay_in + max(self.held, 0)) / stride_in)
        delay_out = (delay_in + self.held - self.pad_left) // hop * self.up
        return delay_out, self.out_channels

    def state(self, batch: int, dtype: torch.dtype, device: torch.device) -> State:
        if self.held <= 0:
            return ()
        if self.channels is None:
            raise ValueError("a filter's stream needs its input channel count (in_channels)")
        return (torch.zeros((batch, self.channels, self.held), dtype=dtype, device=device),)

    def advance(self, x: Tensor, state: State, clock: Clock) -> tuple[Tensor, State]:
        held, zeros = self.held, self.pad_mode == "zeros"
        if self.skips_warmup and clock.all_before_start(self.stride_in, self.delay_in,
                                                        x.shape[-1]):
            # warm-up in, warm-up out, and the held samples are still the zeros they began as
            length = x.shape[-1] // self.hop * self.up
            return x.new_zeros((x.shape[0], self.out_channels, length)), state
        if clock.edges and zeros:  # the held samples were zeroed as they arrived
            x = fill_outside(x, clock, self.stride_in, self.delay_in, "zeros")
        if held > 0:
            window = torch.cat([state[0], x], dim=-1)
        else:  # windows shorter than the hop skip the first -held samples
            window = x[:, :, -held:]
        if clock.edges and not zeros:  # edge samples: the whole window
            window = fill_outside(window, clock, self.stride_in, self.back, self.pad_mode)
        y = self.valid(window)
        return y, ((window[:, :, window.shape[-1] - held :],) if held > 0 else ())

    def output_length(self, length: Position) -> Position:
        padded = length + self.pad_left + self.pad_right
        if self.hop == 1:  # no floor division in a captured graph
            return (padded - self.span + 1) * self.up
        return ((padded - self.span) // self.hop + 1) * self.up


def conv_stream(conv: nn.Conv1d) -> PaddedFilterStream:
    """``nn.Conv1d`` (any stride, dilation, groups; zeros or replicate padding) as a stream."""
    kernel_size, dilation, stride = conv.kernel_size[0], conv.dilation[0], conv.stride[0]
    span = effective_kernel_size(kernel_size, dilation)
    if conv.padding == "valid":
        left = right = 0
    elif conv.padding == "same":
        left = (span - 1) // 2
        right = span - 1 - left
    else:
        left = right = conv.padding[0]
    if conv.padding_mode not in PAD_MODES:
        raise TypeError(
            f"Conv1d padding_mode must be one of {PAD_MODES} to stream, got {conv.padding_mode!r}"
        )
    groups = conv.groups
    tap_weights = TapWeights()

    def valid(x: Tensor) -> Tensor:
        return conv1d_for_stream(x, conv.weight, conv.bias, stride, dilation, groups, tap_weights)

    return PaddedFilterStream(
        valid, conv.out_channels, span, left, right, conv.padding_mode, stride,
        in_channels=conv.in_channels,
    )
