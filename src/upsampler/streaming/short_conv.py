"""Stride-1 convolutions on streaming windows, by whichever formulation is fastest there.

On the short windows a streaming step gives each layer, torch's ``conv1d`` is slow for
dilated kernels: below its size threshold for oneDNN it falls back to a generic kernel
(``slow_conv_dilated2d`` on CPU). Two matrix-product forms do better:

- **gathered taps**, for short windows: the ``K`` taps of every output sample gathered into
  one column, one BLAS call on a copy ``K`` times the window::

      x (B, C_in, L)  --taps t + k * dilation, k < K-->  cols (B, C_in * K, n)
      weight (C_out, C_in * K)  @  cols  ->  (B, C_out, n)

- **tap by tap**, for longer windows of batch 1: ``y = b + sum_k W_k @ x[:, k*d : k*d + n]``,
  ``K`` accumulating products straight on views of the window (no copy), with the weight
  kept as ``(K, C_out, C_in)`` by a :class:`TapWeights` cache.

``conv1d_for_stream`` picks gathered taps below ``TAP_BY_TAP_MIN_OUTPUTS`` outputs (and for
batches up to ``GATHER_MAX_OUTPUTS``), tap by tap from there at batch 1, ``F.conv1d``
elsewhere, and always under capture (an exported step runs the runtime's own conv). Their
cost in a whole stream: the streaming section of ``docs/benchmarks.md``.
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor

from upsampler.conv_transpose.capture import is_capturing

GATHER_MAX_OUTPUTS = 512  # dilated kernels: gathering beats conv1d up to here
TAP_BY_TAP_MIN_OUTPUTS = 512  # batch 1: per-tap products are fastest from here


class TapWeights:
    """A conv weight ``(C_out, C_in, K)`` as ``(K, C_out, C_in)``, copied once per weight.

    The copy is kept while the same weight tensor is passed unchanged (same object, same
    version counter); a weight that autograd must differentiate, or an inference tensor
    (which keeps no version counter, so a change in place could not be seen), is permuted
    per call.
    """

    def __init__(self) -> None:
        self._source: Optional[Tensor] = None
        self._version = -1
        self._taps: Optional[Tensor] = None

    def __call__(self, weight: Tensor) -> Tensor:
        if (weight.requires_grad and torch.is_grad_enabled()) or weight.is_inference():
            return weight.permute(2, 0, 1)
        if weight is not self._source or weight._version != self._version or self._taps is None:
            self._taps = weight.detach().permute(2, 0, 1).contiguous()
            self._source, self._version = weight, weight._version
        return self._taps


def gathered_conv1d(x: Tensor, weight: Tensor, bias: Optional[Tensor], dilation: int) -> Tensor:
    """``F.conv1d(x, weight, bias, dilation=dilation)`` (no padding, stride 1, groups 1)
    as one matrix product: ``(B, C_in, L) -> (B, C_out, L - (K - 1) * dilation)``."""
    batch, channels, length = x.shape
    out_channels, _, kernel_size = weight.shape
    outputs = length - (kernel_size - 1) * dilation
    step_b, step_c, step_t = x.stride()  # a view of a longer buffer needs no copy first
    # (B, C_in, L) -> (B, C_in, K, n): cols[b, c, k, t] = x[b, c, t + k * dilation]
    cols = x.as_strided((batch, channels, kernel_size, outputs),
                        (step_b, step_c, dilation * step_t, step_t), x.storage_offset())
    flat = weight.reshape(out_channels, channels * kernel_size)
    if batch == 1:
        cols = cols.reshape(channels * kernel_size, outputs)  # (C_in * K, n), a copy
        if bias is None:
            return (flat @ cols).unsqueeze(0)
        return torch.addmm(bias.unsqueeze(1), flat, cols).unsqueeze(0)  # (1, C_out, n)
    cols = cols.reshape(batch, channels * kernel_size, outputs)  # (B, C_in * K, n), a copy
    y = flat @ cols  # (C_out, C_in * K) @ (B, C_in * K, n) -> (B, C_out, n)
    return y if bias is None else y + bias.unsqueeze(1)


def tap_by_tap_conv1d(x: Tensor, taps: Tensor, bias: Optional[Tensor], dilation: int) -> Tensor:
    """``F.conv1d`` (no padding, stride 1, groups 1) of a batch-1 window as ``K`` accumulating
    products, ``taps`` ``(K, C_out, C_in)``: ``(1, C_in, L) -> (1, C_out, L - (K - 1) * d)``."""
    kernel_size = taps.shape[0]
    window = x[0]  # (C_in, L); each tap reads a view of it, no copy
    outputs = window.shape[1] - (kernel_size - 1) * dilation
    first = window.narrow(1, 0, outputs)
    y = taps[0] @ first if bias is None else torch.addmm(bias.unsqueeze(1), taps[0], first)
    for k in range(1, kernel_size):
        y.addmm_(taps[k], window.narrow(1, k * dilation, outputs))
    return y.unsqueeze(0)


def conv1d_for_stream(
    x: Tensor,
    weight: Tensor,
    bias: Optional[Tensor],
    stride: int,
    dilation: int,
    groups: int,
    tap_weights: Optional[TapWeights] = None,
) -> Tensor:
    """Unpadded ``F.conv1d`` on a streaming window, by whichever path is faster for its shape.

    ``tap_weights`` (one per conv and stream) enables the tap-by-tap path for long windows.
    """
    kernel_size = weight.shape[-1]
    outputs = x.shape[-1] - (kernel_size - 1) * dilation
    if is_capturing():  # an exported step: the runtime's own conv kernel
        return F.conv1d(x, weight, bias, stride, 0, dilation, groups)
    if kernel_size > 1 and stride == 1 and groups == 1 and outputs > 0:
        if x.shape[0] == 1 and tap_weights is not None and outputs >= TAP_BY_TAP_MIN_OUTPUTS:
            if x.stride(-1) == 1:
                return tap_by_tap_conv1d(x, tap_weights(weight), bias, dilation)
        if outputs <= GATHER_MAX_OUTPUTS:
            return gathered_conv1d(x, weight, bias, dilation)
    return F.conv1d(x, weight, bias, stride, 0, dilation, groups)
