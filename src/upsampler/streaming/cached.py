"""A HiFi-GAN generator as a graph of stateful streaming ops, each computing new samples once.

Every op takes the samples that became final upstream and returns the ones that became
final at its output (``step``), and the rest at the end (``flush``):

    conv (stride 1)     keeps its last ``span - 1`` inputs; zeros stand for the padding
    transposed conv     ``StreamingConvTranspose1d`` (overlap-add)
    residual  x + f(x)  delays ``x`` in a FIFO until ``f`` has caught up
    average of branches (MRF) buffers each branch and emits what all of them have

The graph mirrors ``HiFiGANGenerator.forward`` (same ops, same order of the sums), so the
outputs concatenate to the offline output; a sample is emitted as soon as it is final.
"""

from __future__ import annotations

from typing import Callable, Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from upsampler.layers.resblocks import LRELU_SLOPE
from upsampler.lengths import effective_kernel_size
from upsampler.models.hifigan import POST_LRELU_SLOPE
from upsampler.streaming.conv_transpose import StreamingConvTranspose1d


def _cat(first: Optional[Tensor], second: Tensor) -> Tensor:
    return second if first is None else torch.cat([first, second], dim=-1)


class StreamOp:
    """``step(x) -> y`` per chunk, ``flush() -> y`` at the end; ``reset()`` forgets."""

    def step(self, x: Tensor) -> Tensor:
        raise NotImplementedError

    def flush(self) -> Tensor:
        raise NotImplementedError

    def reset(self) -> None:
        raise NotImplementedError


class Pointwise(StreamOp):
    """A sample-wise function (activation): no state."""

    def __init__(self, fn: Callable[[Tensor], Tensor]) -> None:
        self.fn = fn
        self.last: Optional[Tensor] = None

    def step(self, x: Tensor) -> Tensor:
        self.last = x.new_empty((x.shape[0], x.shape[1], 0))  # what flush() returns
        return self.fn(x)

    def flush(self) -> Tensor:
        return self.last

    def reset(self) -> None:
        self.last = None


class Conv(StreamOp):
    """A stride-1 ``nn.Conv1d``: ``(B, C_in, n) -> (B, C_out, n')`` with left/right zero padding."""

    def __init__(self, conv: nn.Conv1d) -> None:
        self.conv = conv
        self.span = effective_kernel_size(conv.kernel_size[0], conv.dilation[0])
        self.left = conv.padding[0]
        self.right = self.span - 1 - self.left
        self.reset()

    def reset(self) -> None:
        self.buffer: Optional[Tensor] = None  # inputs not yet consumed (incl. left zeros)

    def _run(self, buffer: Tensor) -> Tensor:
        outputs = buffer.shape[-1] - self.span + 1
        if outputs <= 0:
            self.buffer = buffer
            return buffer.new_zeros((buffer.shape[0], self.conv.out_channels, 0))
        conv = self.conv
        out = F.conv1d(buffer, conv.weight, conv.bias, 1, 0, conv.dilation, conv.groups)
        self.buffer = buffer[:, :, outputs:]
        return out

    def step(self, x: Tensor) -> Tensor:
        if self.buffer is None:
            x = F.pad(x, (self.left, 0))
        return self._run(_cat(self.buffer, x))

    def flush(self) -> Tensor:
        return self._run(F.pad(self.buffer, (0, self.right)))


class Transposed(StreamOp):
    """Adapter for ``StreamingConvTranspose1d``."""

    def __init__(self, layer: nn.Module) -> None:
        self.stream = StreamingConvTranspose1d(layer)

    def step(self, x: Tensor) -> Tensor:
        return self.stream.step(x)

    def flush(self) -> Tensor:
        return self.stream.flush()

    def reset(self) -> None:
        self.stream.reset()


class Chain(StreamOp):
    """Ops in sequence; ``flush`` pushes each op's remainder through the ops after it."""

    def __init__(self, ops: list[StreamOp]) -> None:
        self.ops = ops

    def step(self, x: Tensor) -> Tensor:
        for op in self.ops:
            x = op.step(x)
        return x

    def flush(self) -> Tensor:
        out: Optional[Tensor] = None
        for op in self.ops:
            out = op.flush() if out is None else _cat(op.step(out), op.flush())
        return out

    def reset(self) -> None:
        for op in self.ops:
            op.reset()


class Residual(StreamOp):
    """``f(x) + x`` with ``x`` delayed until ``f`` has emitted the same samples."""

    def __init__(self, inner: StreamOp) -> None:
        self.inner = inner
        self.reset()

    def reset(self) -> None:
        self.inner.reset()
        self.fifo: Optional[Tensor] = None

    def _add(self, y: Tensor) -> Tensor:
        count = y.shape[-1]
        out = y + self.fifo[:, :, :count]
        self.fifo = self.fifo[:, :, count:]
        return out

    def step(self, x: Tensor) -> Tensor:
        self.fifo = _cat(self.fifo, x)
        return self._add(self.inner.step(x))

    def flush(self) -> Tensor:
        return self._add(self.inner.flush())


class Average(StreamOp):
    """``(b_0(x) + b_1(x) + ...) / n`` as ``fuse_branches`` sums it, aligned across branches."""

    def __init__(self, branches: list[StreamOp]) -> None:
        self.branches = branches
        self.reset()

    def reset(self) -> None:
        for branch in self.branches:
            branch.reset()
        self.pending: list[Optional[Tensor]] = [None] * len(self.branches)

    def _emit(self, outputs: list[Tensor]) -> Tensor:
        self.pending = [_cat(p, y) for p, y in zip(self.pending, outputs)]
        count = min(p.shape[-1] for p in self.pending)
        total = self.pending[0][:, :, :count]
        for p in self.pending[1:]:
            total = total + p[:, :, :count]
        self.pending = [p[:, :, count:] for p in self.pending]
        return total / len(self.branches)

    def step(self, x: Tensor) -> Tensor:
        return self._emit([branch.step(x) for branch in self.branches])

    def flush(self) -> Tensor:
        return self._emit([branch.flush() for branch in self.branches])


def _lrelu(slope: float) -> Pointwise:
    return Pointwise(lambda x: F.leaky_relu(x, slope))


def resblock_stream(block: nn.Module) -> StreamOp:
    """ResBlock1 (``convs1``/``convs2``) or ResBlock2 (``convs``) as residual chains."""
    if hasattr(block, "convs1") and hasattr(block, "convs2"):
        return Chain([
            Residual(Chain([_lrelu(LRELU_SLOPE), Conv(c1), _lrelu(LRELU_SLOPE), Conv(c2)]))
            for c1, c2 in zip(block.convs1, block.convs2)
        ])
    if hasattr(block, "convs"):
        return Chain([Residual(Chain([_lrelu(LRELU_SLOPE), Conv(c)])) for c in block.convs])
    raise TypeError(f"resblocks must be ResBlock1 or ResBlock2, got {type(block).__name__}")


def generator_stream(generator: nn.Module) -> StreamOp:
    """``HiFiGANGenerator.forward`` as a streaming graph: mel frames in, samples out."""
    ops: list[StreamOp] = [Conv(generator.conv_pre)]
    for i, up in enumerate(generator.ups):
        stage = generator.resblocks[i * generator.num_kernels : (i + 1) * generator.num_kernels]
        ops += [_lrelu(LRELU_SLOPE), Transposed(up),
                Average([resblock_stream(block) for block in stage])]
    ops += [_lrelu(POST_LRELU_SLOPE), Conv(generator.conv_post), Pointwise(torch.tanh)]
    return Chain(ops)
