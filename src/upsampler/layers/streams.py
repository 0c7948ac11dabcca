"""The generic streams every streaming module is made of (see :mod:`upsampler.layers.streaming`).

Each stream holds the state of one module over one utterance: ``step(x)`` returns the
output samples that became final, ``flush()`` the rest once the input ended, and
``context`` the module's receptive field. Every tensor is ``(B, C, T)``.

=====================  =========================================  =======================
stream                 what it keeps between chunks               module
=====================  =========================================  =======================
``PointwiseStream``    nothing                                    activations
``ChainStream``        its children's state                       ``nn.Sequential``
``ResidualStream``     the skip input until ``inner`` catches up  ``x + inner(x)``
``MeanStream``         each branch's samples the others lack      mean of branches (MRF)
``PaddedFilterStream`` the inputs its next window still reads     conv, subpixel, resize,
                                                                  replicate-padded filters
``ConvTransposeStream`` the overlap-add tail (partial sums)       transposed conv
=====================  =========================================  =======================
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Callable, Optional, Sequence, Union

import torch
from torch import Tensor, nn

from upsampler.layers.short_conv import TapWeights, conv1d_for_stream
from upsampler.lengths import effective_kernel_size

Rational = Union[int, Fraction]
PAD_MODES = ("zeros", "replicate")


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
            _simplest(self.stride * scale),
            _simplest(scale * self.left + after.left),
            _simplest(scale * self.right + after.right),
        )


def _simplest(value: Rational) -> Rational:
    value = Fraction(value)
    return int(value) if value.denominator == 1 else value


def _cat(first: Optional[Tensor], second: Tensor) -> Tensor:
    if first is None or first.shape[-1] == 0:
        return second
    if second.shape[-1] == 0:
        return first
    return torch.cat([first, second], dim=-1)


class Stream:
    """The state of one module over one utterance."""

    context: Context = Context()

    def step(self, x: Tensor) -> Tensor:
        """``(B, C_in, m) -> (B, C_out, n)``: the output samples that became final."""
        raise NotImplementedError

    def flush(self) -> Tensor:
        """``(B, C_out, rest)``: every output sample not yet returned."""
        raise NotImplementedError


class PointwiseStream(Stream):
    """``fn`` on each chunk: a module acting on each time step alone keeps no state."""

    def __init__(self, fn: Callable[[Tensor], Tensor]) -> None:
        self.fn = fn
        self._last: Optional[Tensor] = None  # sliced to an empty tail only at flush

    def step(self, x: Tensor) -> Tensor:
        y = self.fn(x)
        self._last = y
        return y

    def flush(self) -> Tensor:
        if self._last is None:
            raise ValueError("flush() before any input: the stream has received 0 samples")
        return self._last[:, :, :0]


class ChainStream(Stream):
    """Streams in sequence; ``flush`` pushes each one's rest through the ones after it."""

    def __init__(self, streams: Sequence[Stream]) -> None:
        if len(streams) == 0:
            raise ValueError("a chain needs at least one stream")
        self.streams = list(streams)
        context = Context()
        for stream in self.streams:
            context = context.then(stream.context)
        self.context = context

    def step(self, x: Tensor) -> Tensor:
        for stream in self.streams:
            x = stream.step(x)
        return x

    def flush(self) -> Tensor:
        out: Optional[Tensor] = None
        for stream in self.streams:
            out = stream.flush() if out is None else _cat(stream.step(out), stream.flush())
        assert out is not None  # the constructor refuses an empty chain
        return out


class ResidualStream(Stream):
    """``inner(x) + x`` with ``x`` held until ``inner`` has returned the same samples."""

    def __init__(self, inner: Stream) -> None:
        if inner.context.stride != 1:
            raise ValueError(f"a residual's inner module must keep the rate, got {inner.context}")
        self.inner = inner
        self.context = Context(1, max(inner.context.left, 0), max(inner.context.right, 0))
        self._skip: Optional[Tensor] = None

    def _add(self, y: Tensor) -> Tensor:
        count = y.shape[-1]
        skip = self._skip
        assert skip is not None  # step() held the input before inner could return samples
        self._skip = skip.narrow(-1, count, skip.shape[-1] - count)
        return y + skip.narrow(-1, 0, count)

    def step(self, x: Tensor) -> Tensor:
        self._skip = _cat(self._skip, x)
        return self._add(self.inner.step(x))

    def flush(self) -> Tensor:
        return self._add(self.inner.flush())


class MeanStream(Stream):
    """``(b_0(x) + b_1(x) + ...) / n``, summed in branch order, aligned across branches."""

    def __init__(self, branches: Sequence[Stream]) -> None:
        if len(branches) == 0:
            raise ValueError("a branch mean needs at least one branch")
        strides = {b.context.stride for b in branches}
        if len(strides) != 1:
            raise ValueError(f"branches must share one rate, got strides {sorted(strides)}")
        self.branches = list(branches)
        self.context = Context(
            strides.pop(), max(b.context.left for b in branches),
            max(b.context.right for b in branches),
        )
        self._held: list[Optional[Tensor]] = [None] * len(self.branches)

    def _mean(self, outputs: list[Tensor]) -> Tensor:
        held = [_cat(h, y) for h, y in zip(self._held, outputs)]
        count = min(h.shape[-1] for h in held)
        parts = [h.narrow(-1, 0, count) for h in held]
        # a new tensor from the first sum (or a copy): the in-place adds change no input
        total = parts[0] + parts[1] if len(parts) > 1 else parts[0].clone()
        for part in parts[2:]:
            total.add_(part)
        self._held = [h.narrow(-1, count, h.shape[-1] - count) for h in held]
        return total.div_(len(parts))

    def step(self, x: Tensor) -> Tensor:
        return self._mean([branch.step(x) for branch in self.branches])

    def flush(self) -> Tensor:
        return self._mean([branch.flush() for branch in self.branches])


class PaddedFilterStream(Stream):
    """A module computing ``valid(pad(x))``, ``valid`` a sliding window op, step by step.

    ``valid`` maps ``L`` (padded) samples to ``((L - span) // hop + 1) * up`` samples:
    window ``w`` reads padded samples ``[w * hop, w * hop + span)`` and gives ``up``
    outputs. ``pad_mode`` "zeros" or "replicate" (the first / last sample repeated) fills
    ``pad_left`` samples before the input and ``pad_right`` after it::

        padded input  [ pad_left | x_0 ... x_(N-1) | pad_right ]
        window w      [w*hop ........ w*hop + span)  ->  outputs [w*up, (w + 1)*up)

    A window is computed once all its samples have arrived; the right padding is known
    at ``flush``. Stride-1 and strided convs, subpixel convs, resize layers and
    replicate-padded low-pass filters are all of this form.
    """

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
    ) -> None:
        if pad_mode not in PAD_MODES:
            raise ValueError(f"pad_mode must be one of {PAD_MODES}, got {pad_mode!r}")
        self.valid, self.out_channels = valid, out_channels
        self.span, self.hop, self.up = span, hop, up
        self.pad_left, self.pad_right, self.pad_mode = pad_left, pad_right, pad_mode
        stride = Fraction(up, hop)
        self.context = Context(
            _simplest(stride), _simplest(up - 1 + pad_left * stride),
            _simplest((span - 1 - pad_left) * stride),
        )
        self._buffer: Optional[Tensor] = None  # padded inputs not yet consumed
        self._last: Optional[Tensor] = None  # the last input sample (replicate padding)
        self._started = False

    def _pad(self, edge: Tensor, count: int) -> Tensor:
        batch, channels, _ = edge.shape
        if self.pad_mode == "zeros":
            return edge.new_zeros((batch, channels, count))
        return edge.expand(batch, channels, count)

    def _run(self, buffer: Tensor) -> Tensor:
        windows = (buffer.shape[-1] - self.span) // self.hop + 1
        if windows <= 0:
            self._buffer = buffer
            return buffer.new_zeros((buffer.shape[0], self.out_channels, 0))
        length, consumed = buffer.shape[-1], windows * self.hop
        self._buffer = buffer.narrow(-1, consumed, length - consumed)
        used = consumed - self.hop + self.span
        return self.valid(buffer if used >= length else buffer.narrow(-1, 0, used))

    def step(self, x: Tensor) -> Tensor:
        if x.shape[-1] == 0:
            return x.new_zeros((x.shape[0], self.out_channels, 0))
        if not self._started:
            self._started = True
            if self.pad_left > 0:
                x = torch.cat([self._pad(x[:, :, :1], self.pad_left), x], dim=-1)
        if self.pad_mode == "replicate":
            self._last = x.narrow(-1, x.shape[-1] - 1, 1)
        return self._run(_cat(self._buffer, x))

    def flush(self) -> Tensor:
        if not self._started:
            raise ValueError("flush() before any input: the stream has received 0 samples")
        buffer = self._buffer
        if self.pad_right > 0:
            edge = self._last if self._last is not None else buffer[:, :, -1:]
            buffer = _cat(buffer, self._pad(edge, self.pad_right))
        return self._run(buffer)


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
        valid, conv.out_channels, span, left, right, conv.padding_mode, stride
    )
