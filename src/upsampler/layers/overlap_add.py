"""The transposed convolution's stream: overlap-add of each chunk onto the previous tail.

Each chunk of ``m`` input samples is convolved without padding or bias, giving
``(m - 1) * stride + span`` samples that start at ``received * stride`` (uncropped
positions). Its first ``span - stride`` samples overlap the previous chunk's tail and
are added to it; positions below ``received * stride`` get nothing from later inputs and
are final::

    uncropped:  0 ......... p ............................. N*s .... N*s + span - s
                |-- crop --|--- emitted -----|-- held --|--- tail (partial sums) ---|
                                  ready = min(N*s - p, L_out(N)) (lengths.streaming_ready_length)

The first ``padding`` samples are cropped, samples beyond the length the output would
have if the stream ended now are held back, and ``flush()`` emits the tail up to
``L_out`` (zeros past the tail where ``output_padding`` extends the output); the bias is
added as samples leave.
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from upsampler.conv_transpose.functional import conv_transpose1d
from upsampler.layers.streams import Context, Stream
from upsampler.lengths import (
    effective_kernel_size,
    streaming_ready_length,
    transposed_context,
    transposed_output_length,
)


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
        self.out_channels = layer.out_channels
        self.padding = layer.padding[0] if padding is None else padding
        self.output_padding = layer.output_padding[0] if output_padding is None else output_padding
        span = effective_kernel_size(self.kernel_size, self.dilation)
        self.tail_length = max(span - self.stride, 0)
        left, right = transposed_context(
            self.kernel_size, self.stride, self.padding, self.dilation
        )
        self.context = Context(self.stride, left, right)
        self._pending: Optional[Tensor] = None  # uncropped positions [_base, received*s + tail)
        self._base = 0
        self.received = 0  # input samples so far
        self.emitted = 0  # output samples so far

    def ready(self, received: int) -> int:
        """Output samples that are final after ``received`` input samples."""
        return streaming_ready_length(
            received, self.kernel_size, self.stride, self.padding, self.output_padding,
            self.dilation,
        )

    def _emit(self, buffer: Tensor, stop: int) -> Tensor:
        """Output samples ``[emitted, stop)`` of ``buffer`` (uncropped, from ``_base``) + bias."""
        start = self.emitted + self.padding - self._base
        out = buffer[:, :, start : start + stop - self.emitted]
        bias = self.layer.bias
        if bias is not None:
            out = out + bias[:, None]  # (C_out,) -> (C_out, 1)
        self.emitted = stop
        return out

    def step(self, x: Tensor) -> Tensor:
        batch, _, length = x.shape
        if length == 0:
            return x.new_zeros((batch, self.out_channels, 0))
        # uncropped, unbiased: (B, C_in, m) -> (B, C_out, (m - 1) * stride + span)
        full = conv_transpose1d(
            x, self.layer.weight, None, self.stride, 0, 0, self.groups, self.dilation
        )
        start = self.received * self.stride
        received = self.received + length
        needed = received * self.stride + self.tail_length - start  # positions from `start`
        if full.shape[-1] < needed:  # a kernel shorter than the stride leaves gaps
            full = F.pad(full, (0, needed - full.shape[-1]))
        if self._pending is None:
            buffer = full
        else:
            head = start - self._base  # final samples held back (padding beyond the tail)
            overlap = self._pending.shape[-1] - head
            pieces = [self._pending[:, :, head:] + full[:, :, :overlap], full[:, :, overlap:]]
            if head > 0:
                pieces.insert(0, self._pending[:, :, :head])
            buffer = torch.cat(pieces, dim=-1)
        ready = self.ready(received)
        out = self._emit(buffer, ready)
        drop = min(received * self.stride, self.padding + ready)  # final and emitted/cropped
        self._pending = buffer[:, :, drop - self._base :]
        self._base = drop
        self.received = received
        return out

    def flush(self) -> Tensor:
        if self._pending is None:
            raise ValueError("flush() before any input: the stream has received 0 samples")
        end = transposed_output_length(
            self.received, self.kernel_size, self.stride, self.padding, self.output_padding,
            self.dilation,
        )
        # output_padding may reach past the tail: those positions are zero before the bias
        missing = max(0, end + self.padding - self._base - self._pending.shape[-1])
        out = self._emit(F.pad(self._pending, (0, missing)), end)
        self._pending = None
        return out
