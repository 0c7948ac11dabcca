"""A 1-D convolution on short inputs as one matrix product over the gathered taps.

On the few output samples a streaming step gives each layer, torch's ``conv1d`` is slow
for dilated kernels: it falls back to a generic kernel (``slow_conv_dilated2d`` on CPU).
Gathering the ``kernel_size`` taps of every output sample into one row and multiplying by
the flattened weight is one BLAS call instead::

    x (B, C_in, L)  --taps k*dilation, k < K-->  (B, n, C_in * K)  @  (C_in * K, C_out)
                                                                  ->  (B, C_out, n)

``conv1d_for_stream`` picks that path where it was measured faster (2 threads, CPU,
channels 32-256, kernels 3-11: 1.5-6x at dilation > 1 up to about 256 outputs, and at any
dilation below 16 outputs) and ``F.conv1d`` everywhere else.
"""

from __future__ import annotations

from typing import Optional

import torch.nn.functional as F
from torch import Tensor

GATHER_MAX_OUTPUTS_DILATED = 256  # dilated kernels: gathering wins up to here
GATHER_MAX_OUTPUTS = 16  # undilated kernels: only on very short windows


def gathered_conv1d(x: Tensor, weight: Tensor, bias: Optional[Tensor], dilation: int) -> Tensor:
    """``F.conv1d(x, weight, bias, dilation=dilation)`` (no padding, stride 1, groups 1)
    as one matrix product: ``(B, C_in, L) -> (B, C_out, L - (K - 1) * dilation)``."""
    batch, channels, length = x.shape
    out_channels, _, kernel_size = weight.shape
    outputs = length - (kernel_size - 1) * dilation
    x = x.contiguous()
    step_b, step_c, step_t = x.stride()
    # (B, C_in, L) -> (B, n, C_in, K): window of output t, tap k = x[:, :, t + k * dilation]
    taps = x.as_strided((batch, outputs, channels, kernel_size),
                        (step_b, step_t, step_c, dilation * step_t))
    taps = taps.reshape(batch, outputs, channels * kernel_size)
    flat = weight.reshape(out_channels, channels * kernel_size)
    if bias is None:
        y = taps @ flat.t()  # (B, n, C_in * K) @ (C_in * K, C_out) -> (B, n, C_out)
    else:
        y = (taps @ flat.t()).add_(bias)
    return y.transpose(1, 2)  # (B, n, C_out) -> (B, C_out, n)


def conv1d_for_stream(
    x: Tensor, weight: Tensor, bias: Optional[Tensor], stride: int, dilation: int, groups: int
) -> Tensor:
    """Unpadded ``F.conv1d`` on a streaming window, by whichever path is faster for its shape."""
    outputs = x.shape[-1] - (weight.shape[-1] - 1) * dilation
    limit = GATHER_MAX_OUTPUTS_DILATED if dilation > 1 else GATHER_MAX_OUTPUTS
    if stride == 1 and groups == 1 and outputs <= limit:
        return gathered_conv1d(x, weight, bias, dilation)
    return F.conv1d(x, weight, bias, stride, 0, dilation, groups)
