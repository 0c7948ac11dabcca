"""The streaming protocol: pure steps on explicit state, one fixed delay per layer.

A stream is one module's rule for running on chunks. Its state is a tuple of tensors that
the caller holds; nothing is kept in the stream object between chunks::

    state = stream.init_state(batch, dtype, device)   # zeros, and a position counter
    y, state = stream.step(x, state)   # (B, C_in, m) -> (B, C_out, n): the samples now final
    rest = stream.flush(state)         # end of input: steps + flush == module(x_whole)
    stream.context                     # Context(stride, left, right): the receptive field

Inside, every layer maps ``m`` input samples to ``m * stride`` output samples with a fixed
delay: a layer whose input chunk starts at position ``q`` returns the samples from
``q * stride - R`` on, ``R`` its own reach to the right (plus alignment for a strided
filter). Delays add up the chain (``D_out = D_in * stride + R``), so a whole generator
lags its input by a fixed ``delay`` output samples; the first ``delay`` samples of a
stream are warm-up (negative positions) and are cut. Each layer's window is made what
the offline ``forward`` pads it to: samples before position 0 or past the input's length
``end`` are replaced by zeros or the edge sample (:class:`Clock`). Until the input ends,
``end`` is open; ``flush`` feeds zeros with ``end`` set, so one step function serves
warm-up, steady state and flush, which is what an exported step needs
(:mod:`upsampler.streaming.step`).

Composite streams plan their children once (:meth:`Stream.plan`), which fixes every
layer's input stride, input delay and state shapes.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from fractions import Fraction
from typing import Any, Callable, Optional, Union

import torch
from torch import Tensor, nn

Rational = Union[int, Fraction]
Position = Union[int, Tensor]  # a Python int in eager, a 0-d int64 tensor under capture
State = tuple[Any, ...]  # nested tuples of tensors
OPEN_END = 2**40  # ``end`` while the input goes on: past any position a stream reaches
LENGTH_CHECKS = 17  # input lengths tried by keeps_length (periodic floors up to hop 16)


def simplest(value: Rational) -> Rational:
    """``value`` as an int when it is whole, else as a ``Fraction``."""
    value = Fraction(value)
    return int(value) if value.denominator == 1 else value


@dataclass(frozen=True)
class Context:
    """Receptive field: output ``j`` reads input ``t`` only if ``t * stride`` is in
    ``[j - left, j + right]`` (``stride`` = output samples per input sample, a fraction for
    downsamplers). ``then`` composes two modules in sequence::

        reach after ``b`` = b.stride * (reach of ``a``) + b's own reach
    """

    stride: Rational = 1
    left: Rational = 0
    right: Rational = 0

    def then(self, after: "Context") -> "Context":
        scale = Fraction(after.stride)
        return Context(
            simplest(self.stride * scale),
            simplest(scale * self.left + after.left),
            simplest(scale * self.right + after.right),
        )


@dataclass(frozen=True)
class Clock:
    """Where a step's chunk sits. ``position``: input samples of the whole stream before
    this chunk (top-level units); ``end``: the length of the current layer's input (open,
    ``OPEN_END``, until the input ends); ``edges``: whether any window of this step may
    reach before position 0 or past ``end`` (if not, layers skip the padding fix-up).

    Under capture ``lines`` holds the positions and masks shared by every layer at a rate,
    and ``exact`` says the layer's input has ``end * rate`` samples (``end`` the top-level
    one), so the rate's mask serves it and ``end`` is not carried layer by layer."""

    position: Position
    end: Position
    edges: bool = True
    lines: Optional["PositionLines"] = field(default=None, compare=False)
    exact: bool = True

    def start(self, stride_in: Fraction, delay_in: int) -> Position:
        """Position of a layer's first input sample in this chunk, its own units."""
        if stride_in.denominator == 1:  # no floor division in a captured graph
            return self.position * stride_in.numerator - delay_in
        return self.position * stride_in.numerator // stride_in.denominator - delay_in

    def all_before_start(self, stride_in: Fraction, delay_in: int, length: int) -> bool:
        """Eager warm-up: whether all ``length`` input samples of a layer's chunk lie before
        position 0 (so its outputs are warm-up too, and need not be computed)."""
        if not self.edges or self.lines is not None:
            return False
        return self.start(stride_in, delay_in) + length <= 0

    def after(self, stream: "Stream", stride_in: Fraction) -> "Clock":
        """The clock of the layer after ``stream`` (whose input is at ``stride_in``)."""
        if self.lines is not None and self.exact:
            if stream.keeps_length():
                return self
            end = self.lines.end * stride_in.numerator // stride_in.denominator
            return replace(self, end=stream.output_length(end), exact=False)
        return replace(self, end=stream.output_length(self.end))


class PositionLines:
    """Under capture: one ``arange`` of positions per rate (and its inside-the-input mask),
    which every window at that rate slices at a static offset.

    ``reaches[rate]``: how far before ``position * rate`` the windows at that rate start;
    ``chunk``: top-level samples per step; ``end``: the top-level input's length.
    """

    def __init__(self, position: Tensor, end: Tensor, chunk: int,
                 reaches: dict[Fraction, int]) -> None:
        self.position, self.end, self.chunk, self.reaches = position, end, chunk, reaches
        self._lines: dict[Fraction, Tensor] = {}
        self._masks: dict[Fraction, Tensor] = {}

    def _line(self, stride_in: Fraction) -> Tensor:
        line = self._lines.get(stride_in)
        if line is None:
            reach = self.reaches[stride_in]
            first = Clock(self.position, 0).start(stride_in, reach)
            size = reach + int(self.chunk * stride_in)
            line = self._lines[stride_in] = torch.arange(size, device=self.position.device) + first
        return line

    def window(self, stride_in: Fraction, back: int, width: int) -> Tensor:
        """Positions of ``width`` samples from ``back`` before ``position * stride_in``."""
        offset = self.reaches[stride_in] - back
        return self._line(stride_in)[offset : offset + width]

    def inside(self, stride_in: Fraction, back: int, width: int) -> Tensor:
        """Whether those positions lie in ``[0, end * stride_in)`` (one mask per rate)."""
        mask = self._masks.get(stride_in)
        if mask is None:
            line = self._line(stride_in)
            end = self.end * stride_in.numerator // stride_in.denominator
            mask = self._masks[stride_in] = (line >= 0) & (line < end)
        offset = self.reaches[stride_in] - back
        return mask[offset : offset + width]


class Stream:
    """One module's streaming rule; subclasses define ``plan``, ``state``, ``advance``.

    ``plan(stride_in, delay_in, channels) -> (delay_out, channels_out)`` fixes where the
    layer sits (its input at ``stride_in`` samples per top-level input sample, lagging
    ``delay_in`` of its own samples, with ``channels`` channels if known) and sets
    ``quantum`` (top-level samples per step must be a multiple of it) and ``warmup``
    (top-level position from which no window reaches before 0). ``in_channels`` is the
    input channel count a stream knows by itself (None: it takes whatever comes).
    """

    context: Context = Context()
    in_channels: Optional[int] = None
    quantum: int = 1
    warmup: int = 0
    delay: int = 0  # output delay once planned as the top-level stream
    channels_out: Optional[int] = None  # output channels once planned (None: the input's)
    _planned: bool = False

    # ---- what each stream defines --------------------------------------------------------

    def plan(
        self, stride_in: Fraction, delay_in: int, channels: Optional[int]
    ) -> tuple[int, Optional[int]]:
        raise NotImplementedError(f"{type(self).__name__} must define plan()")

    def state(self, batch: int, dtype: torch.dtype, device: torch.device) -> State:
        """Zero state tensors (after ``plan``)."""
        raise NotImplementedError(f"{type(self).__name__} must define state()")

    def advance(self, x: Tensor, state: State, clock: Clock) -> tuple[Tensor, State]:
        """``(B, C_in, m) -> (B, C_out, m * stride)`` at the planned delay; new state."""
        raise NotImplementedError(f"{type(self).__name__} must define advance()")

    def output_length(self, length: Position) -> Position:
        """Offline output length for an input of ``length`` samples (int or tensor)."""
        return length

    def children(self) -> list["Stream"]:
        """The streams this one composes (none for a leaf)."""
        return []

    def keeps_length(self) -> bool:
        """Whether ``output_length(n) == n * stride`` for every whole ``n * stride``."""
        stride = Fraction(self.context.stride)
        counts = range(stride.denominator, LENGTH_CHECKS * stride.denominator,
                       stride.denominator)
        return all(self.output_length(n) == n * stride for n in counts)

    def reaches(self) -> dict[Fraction, int]:
        """Per input rate, how far back (own samples) any window of a step starts, after
        ``plan``: leaves with windows set ``stride_in`` and ``back``."""
        found: dict[Fraction, int] = {}
        todo = [self]
        while todo:
            stream = todo.pop()
            todo.extend(stream.children())
            back = getattr(stream, "back", None)
            if back is not None:
                found[stream.stride_in] = max(found.get(stream.stride_in, back), back)
        return found

    # ---- the pure top-level API ----------------------------------------------------------

    def planned(self) -> "Stream":
        """Plan as a top-level stream (once): input at stride 1, no delay."""
        if not self._planned:
            self.delay, self.channels_out = self.plan(Fraction(1), 0, self.in_channels)
            self._planned = True
        return self

    def init_state(self, batch: int, dtype: torch.dtype, device: torch.device) -> State:
        """``(position, layers, input)``: a 0-d int64 count of input samples, every layer's
        zero state, and an empty ``(B, C_in, 0)`` view of the last chunk (None before it),
        which tells ``flush`` the input's channels."""
        self.planned()
        position = torch.zeros((), dtype=torch.int64, device=device)
        return (position, self.state(batch, dtype, device), None)

    def first_output(self, position: int) -> int:
        """Output position of the first sample a step at input ``position`` returns."""
        stride = Fraction(self.context.stride)
        return position * stride.numerator // stride.denominator - self.delay

    def step(self, x: Tensor, state: State) -> tuple[Tensor, State]:
        """``(B, C_in, m) -> (B, C_out, n)``, ``m`` a multiple of ``quantum``: the output
        samples that became final (warm-up cut), and the new state."""
        position, layers, _ = state
        position, length = int(position), x.shape[-1]
        if length % self.planned().quantum:
            raise ValueError(f"chunk length must be a multiple of {self.quantum}, got {length}")
        if length == 0:
            channels = x.shape[1] if self.channels_out is None else self.channels_out
            return x.new_zeros((x.shape[0], channels, 0)), state
        clock = Clock(position, OPEN_END, edges=position < self.warmup)
        y, layers = self.advance(x, layers, clock)
        start = self.first_output(position)
        if start < 0:
            y = y.narrow(-1, min(-start, y.shape[-1]), max(y.shape[-1] + start, 0))
        return y, (state[0] + length, layers, x[:, :, :0])

    def flush(self, state: State, x: Optional[Tensor] = None) -> Tensor:
        """``(B, C_out, rest)``: every output sample the steps have not returned, after the
        last input ``x`` (if given; fewer than ``quantum`` samples, say)."""
        position, layers, last = int(state[0]), state[1], state[2]
        last = x if x is not None else last
        tail = 0 if x is None else x.shape[-1]
        if position + tail == 0 or last is None:
            raise ValueError("flush() before any input: the stream has received 0 samples")
        end = int(self.output_length(position + tail))
        stride = Fraction(self.context.stride)
        first = self.first_output(position)
        # zeros past the end until the output reaches ``end`` (whole quanta)
        needed = -(-(end + self.delay) * stride.denominator // stride.numerator) - position
        needed = max(-(-max(needed, tail) // self.quantum) * self.quantum, self.quantum)
        zeros = last.new_zeros((last.shape[0], last.shape[1], needed - tail))
        padded = zeros if x is None else torch.cat([x, zeros], dim=-1)
        y, _ = self.advance(padded, layers, Clock(position, position + tail, edges=True))
        begin = min(max(-first, 0), y.shape[-1])
        return y.narrow(-1, begin, max(end - max(first, 0), 0))


StreamRule = Callable[[nn.Module], Stream]
_RULES: dict[type, StreamRule] = {}


def register_stream(cls: type, rule: StreamRule) -> None:
    """Stream every module of exactly type ``cls`` with ``rule(module) -> Stream``."""
    if not isinstance(cls, type) or not issubclass(cls, nn.Module):
        raise TypeError(f"cls must be an nn.Module subclass, got {cls!r}")
    _RULES[cls] = rule


def new_stream(module: nn.Module) -> Stream:
    """A fresh (unplanned) stream of ``module``; raises ``TypeError`` if it has no rule."""
    make = getattr(module, "new_stream", None)
    if make is not None:
        return make()
    rule = _RULES.get(type(module))
    if rule is None:
        # a weight-normed module's class is Parametrized<Cls>: the rule of <Cls> applies
        cls = type(module)
        if cls.__name__.startswith("Parametrized"):
            rule = _RULES.get(cls.__bases__[0])
    if rule is None:
        raise TypeError(
            f"{type(module).__name__} has no streaming rule: subclass StreamingModule and "
            f"define new_stream(), subclass Pointwise, or call register_stream()"
        )
    return rule(module)


def stream_context(module: nn.Module) -> Context:
    """``Context(stride, left, right)`` of ``module``: its output ``j`` reads input ``t`` only
    if ``t * stride`` lies in ``[j - left, j + right]`` (see :class:`Context`)."""
    return new_stream(module).context
