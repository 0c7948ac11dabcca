"""The composite streams and the delay line (see :mod:`upsampler.streaming.protocol`).

=====================  ==========================================  =====================
stream                 state between chunks                        module
=====================  ==========================================  =====================
``PointwiseStream``    none                                        activations
``ChainStream``        its children's states                       ``nn.Sequential``
``ResidualStream``     the skip input, delayed to meet ``inner``   ``x + inner(x)``
``MeanStream``         each branch's output, delayed to the last   mean of branches (MRF)
=====================  ==========================================  =====================

The filters (``PaddedFilterStream``) and the transposed conv (``ConvTransposeStream``)
have their own modules. Every tensor is ``(B, C, T)``.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Callable, Optional, Sequence, Union

import torch
from torch import Tensor

from upsampler.streaming.protocol import Clock, Context, Position, State, Stream

Plan = tuple[int, Optional[int]]  # (output delay, output channels)


def delayed(x: Tensor, held: Union[Tensor, tuple]) -> tuple[Tensor, Union[Tensor, tuple]]:
    """A delay line: ``x`` lagged by ``held``'s length (``()``: none); (output, new held)."""
    if not isinstance(held, Tensor):
        return x, held
    joined = torch.cat([held, x], dim=-1)
    length = x.shape[-1]
    return joined[:, :, :length], joined[:, :, length:]


def delay_line(batch: int, channels: Optional[int], delay: int, dtype: torch.dtype,
               device: torch.device) -> Union[Tensor, tuple]:
    """The zero state of a ``delay``-sample delay line (``()`` for no delay)."""
    if not delay:
        return ()
    if channels is None:
        raise ValueError("a delay line needs its channel count: give the stream in_channels")
    return torch.zeros((batch, channels, delay), dtype=dtype, device=device)


class PointwiseStream(Stream):
    """``fn`` on each chunk: a module acting on each time step alone keeps no state."""

    def __init__(self, fn: Callable[[Tensor], Tensor]) -> None:
        self.fn = fn

    def plan(self, stride_in: Fraction, delay_in: int, channels: Optional[int]) -> Plan:
        return delay_in, channels

    def state(self, batch: int, dtype: torch.dtype, device: torch.device) -> State:
        return ()

    def advance(self, x: Tensor, state: State, clock: Clock) -> tuple[Tensor, State]:
        return self.fn(x), state


class ChainStream(Stream):
    """Streams in sequence; each one's output clock is the next one's input clock."""

    def __init__(self, streams: Sequence[Stream]) -> None:
        if len(streams) == 0:
            raise ValueError("a chain needs at least one stream")
        self.streams = list(streams)
        context = Context()
        for stream in self.streams:
            context = context.then(stream.context)
        self.context = context
        self.in_channels = next(
            (s.in_channels for s in self.streams if s.in_channels is not None), None)

    def plan(self, stride_in: Fraction, delay_in: int, channels: Optional[int]) -> Plan:
        self.strides_in = []  # each child's input rate
        for stream in self.streams:
            self.strides_in.append(stride_in)
            delay_in, channels = stream.plan(stride_in, delay_in, channels)
            stride_in = stride_in * Fraction(stream.context.stride)
        self.quantum = math.lcm(*(stream.quantum for stream in self.streams))
        self.warmup = max(stream.warmup for stream in self.streams)
        return delay_in, channels

    def state(self, batch: int, dtype: torch.dtype, device: torch.device) -> State:
        return tuple(stream.state(batch, dtype, device) for stream in self.streams)

    def advance(self, x: Tensor, state: State, clock: Clock) -> tuple[Tensor, State]:
        if not clock.edges:  # steady state: no clock to carry along
            states = []
            for stream, own in zip(self.streams, state):
                x, own = stream.advance(x, own, clock)
                states.append(own)
            return x, tuple(states)
        states = []
        for stream, own, stride_in in zip(self.streams, state, self.strides_in):
            x, own = stream.advance(x, own, clock)
            states.append(own)
            clock = clock.after(stream, stride_in)
        return x, tuple(states)

    def output_length(self, length: Position) -> Position:
        for stream in self.streams:
            length = stream.output_length(length)
        return length

    def children(self) -> list[Stream]:
        return self.streams


class ResidualStream(Stream):
    """``inner(x) + x`` with ``x`` delayed by ``inner``'s own delay."""

    def __init__(self, inner: Stream) -> None:
        if inner.context.stride != 1:
            raise ValueError(f"a residual's inner module must keep the rate, got {inner.context}")
        self.inner, self.in_channels = inner, inner.in_channels
        self.context = Context(1, max(inner.context.left, 0), max(inner.context.right, 0))

    def plan(self, stride_in: Fraction, delay_in: int, channels: Optional[int]) -> Plan:
        self.channels = channels if channels is not None else self.in_channels
        delay_out, channels_out = self.inner.plan(stride_in, delay_in, self.channels)
        self.skip_delay = delay_out - delay_in
        self.quantum, self.warmup = self.inner.quantum, self.inner.warmup
        return delay_out, channels_out

    def state(self, batch: int, dtype: torch.dtype, device: torch.device) -> State:
        held = delay_line(batch, self.channels, self.skip_delay, dtype, device)
        return (self.inner.state(batch, dtype, device), held)

    def advance(self, x: Tensor, state: State, clock: Clock) -> tuple[Tensor, State]:
        inner, held = state
        y, inner = self.inner.advance(x, inner, clock)
        skip, held = delayed(x, held)
        return y + skip, (inner, held)

    def children(self) -> list[Stream]:
        return [self.inner]


class MeanStream(Stream):
    """``(b_0(x) + b_1(x) + ...) / n``, summed in branch order, each branch's output delayed
    to the slowest branch."""

    def __init__(self, branches: Sequence[Stream]) -> None:
        if len(branches) == 0:
            raise ValueError("a branch mean needs at least one branch")
        strides = {b.context.stride for b in branches}
        if len(strides) != 1:
            raise ValueError(f"branches must share one rate, got strides {sorted(strides)}")
        self.branches, self.in_channels = list(branches), branches[0].in_channels
        self.context = Context(
            strides.pop(), max(b.context.left for b in branches),
            max(b.context.right for b in branches),
        )

    def plan(self, stride_in: Fraction, delay_in: int, channels: Optional[int]) -> Plan:
        plans = [branch.plan(stride_in, delay_in, channels) for branch in self.branches]
        delay_out = max(delay for delay, _ in plans)
        self.channels = plans[0][1]
        self.lags = [delay_out - delay for delay, _ in plans]
        self.quantum = math.lcm(*(branch.quantum for branch in self.branches))
        self.warmup = max(branch.warmup for branch in self.branches)
        return delay_out, self.channels

    def state(self, batch: int, dtype: torch.dtype, device: torch.device) -> State:
        inner = tuple(branch.state(batch, dtype, device) for branch in self.branches)
        held = tuple(delay_line(batch, self.channels, lag, dtype, device) for lag in self.lags)
        return (inner, held)

    def advance(self, x: Tensor, state: State, clock: Clock) -> tuple[Tensor, State]:
        inner, held = state
        outputs, new_inner, new_held = [], [], []
        for branch, own, lag in zip(self.branches, inner, held):
            y, own = branch.advance(x, own, clock)
            y, lag = delayed(y, lag)
            outputs.append(y)
            new_inner.append(own)
            new_held.append(lag)
        # a new tensor from the first sum (or a copy): the in-place adds change no input
        total = outputs[0] + outputs[1] if len(outputs) > 1 else outputs[0].clone()
        for y in outputs[2:]:
            total.add_(y)
        return total.div_(len(outputs)), (tuple(new_inner), tuple(new_held))

    def output_length(self, length: Position) -> Position:
        return self.branches[0].output_length(length)

    def children(self) -> list[Stream]:
        return self.branches
