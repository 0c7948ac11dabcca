"""The transposed convolution's stream: overlap-add of each chunk onto the previous tail.

Each chunk of ``m`` input samples starting at input position ``q`` is convolved without
padding or bias, giving ``(m - 1) * stride + span`` samples from uncropped position
``q * stride``. Its first ``span - stride`` samples overlap the previous chunk's tail (the
state, partial sums) and are added to it; positions below ``(q + m) * stride`` get nothing
from later inputs, so they are final and leave, ``m * stride`` of them::

    uncropped:  q*s ................... (q+m)*s ......... (q+m)*s + span - s
                |------ out (+ bias) ------|------ tail (new state) ------|

In cropped positions the output starts at ``q * stride - padding``: the layer's own delay
is its ``padding`` (its reach to the right), plus ``hold`` samples where the padding crops
more than the tail holds (kernel shorter than stride + padding). Inputs outside the real input are zeroed
(warm-up and flush), so past the last input only the tail and ``output_padding``'s zeros
(plus bias) remain, as offline.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from upsampler.conv_transpose.capture import is_capturing
from upsampler.conv_transpose.functional import conv_transpose1d
from upsampler.lengths import effective_kernel_size, transposed_context
from upsampler.streaming.filters import fill_outside
from upsampler.streaming.protocol import Clock, Context, Position, State, Stream
from upsampler.streaming.streams import Plan


class ConvTransposeStream(Stream):
    """A ``ConvTranspose1d`` (ours or torch's) streamed by overlap-add.

    ``padding`` / ``output_padding`` default to the layer's; a layer that crops its
    ``padding=0`` output itself (``TrimmedConvTranspose1d``) passes the equivalent pair.
    """

    def __init__(
        self,
        layer: nn.Module,
        padding: Optional[int] = None,
        output_padding: Optional[int] = None,
    ) -> None:
        self.layer = layer
        self.kernel_size, self.stride = layer.kernel_size[0], layer.stride[0]
        self.dilation, self.groups = layer.dilation[0], layer.groups
        self.in_channels, self.out_channels = layer.in_channels, layer.out_channels
        self.padding = layer.padding[0] if padding is None else padding
        self.output_padding = layer.output_padding[0] if output_padding is None else output_padding
        span = effective_kernel_size(self.kernel_size, self.dilation)
        self.tail_length = max(span - self.stride, 0)
        left, right = transposed_context(
            self.kernel_size, self.stride, self.padding, self.dilation
        )
        self.context = Context(self.stride, left, right)

    def plan(self, stride_in: Fraction, delay_in: int, channels: Optional[int]) -> Plan:
        self.stride_in, self.delay_in, self.back = stride_in, delay_in, delay_in
        self.warmup = math.ceil(delay_in / stride_in)  # from here no input lies before 0
        # a padding longer than the overlap crops more than the tail at the end: after N
        # inputs only L_out(N) = N * stride - (stride - span + 2 * padding - output_padding)
        # samples exist, so ``hold`` final samples wait a step longer than ``padding``
        span = effective_kernel_size(self.kernel_size, self.dilation)
        self.hold = max(0, self.stride - span + self.padding - self.output_padding)
        return delay_in * self.stride + self.padding + self.hold, self.out_channels

    def state(self, batch: int, dtype: torch.dtype, device: torch.device) -> State:
        held = self.hold + self.tail_length
        if not held:
            return ()
        return (torch.zeros((batch, self.out_channels, held), dtype=dtype, device=device),)

    def advance(self, x: Tensor, state: State, clock: Clock) -> tuple[Tensor, State]:
        length, hold, tail = x.shape[-1] * self.stride, self.hold, self.tail_length
        if clock.all_before_start(self.stride_in, self.back, x.shape[-1]):
            # warm-up in, warm-up out, and the tail is still the zeros it began as
            return x.new_zeros((x.shape[0], self.out_channels, length)), state
        if clock.edges:
            x = fill_outside(x, clock, self.stride_in, self.back, "zeros")
        # uncropped, unbiased: (B, C_in, m) -> (B, C_out, (m - 1) * stride + span)
        full = conv_transpose1d(
            x, self.layer.weight, None, self.stride, 0, 0, self.groups, self.dilation
        )
        if full.shape[-1] < length + tail:  # a kernel shorter than the stride leaves gaps
            full = F.pad(full, (0, length + tail - full.shape[-1]))
        if tail:
            if full.requires_grad or is_capturing():  # no in-place slice add in a graph
                full = torch.cat([full[:, :, :tail] + state[0][:, :, hold:], full[:, :, tail:]],
                                 dim=-1)
            else:
                full[:, :, :tail].add_(state[0][:, :, hold:])
        if hold:  # final samples held back from the last step go first
            full = torch.cat([state[0][:, :, :hold], full], dim=-1)
        out, held = full[:, :, :length], full[:, :, length : length + hold + tail]
        bias = self.layer.bias
        if bias is not None:
            out = out + bias[:, None]  # (C_out,) -> (C_out, 1)
        return out, ((held,) if hold + tail else ())

    def output_length(self, length: Position) -> Position:
        # torch's formula (lengths.transposed_output_length), here for tensors too and for
        # the trimmed layer's negative output_padding
        span = effective_kernel_size(self.kernel_size, self.dilation)
        return (length - 1) * self.stride + span - 2 * self.padding + self.output_padding
