"""The gathered-taps convolution equals torch's conv1d on the windows streams give it."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from upsampler.layers.short_conv import conv1d_for_stream, gathered_conv1d


@pytest.mark.parametrize("batch", [1, 2])
@pytest.mark.parametrize("kernel_size,dilation", [(3, 1), (7, 1), (11, 5), (3, 3)])
@pytest.mark.parametrize("with_bias", [True, False])
def test_gathered_conv1d_equals_conv1d(
    batch: int, kernel_size: int, dilation: int, with_bias: bool
) -> None:
    torch.manual_seed(0)
    x = torch.randn(batch, 6, 60, dtype=torch.float64)  # longer than the span 51 of k11 d5
    weight = torch.randn(5, 6, kernel_size, dtype=torch.float64)
    bias = torch.randn(5, dtype=torch.float64) if with_bias else None
    expected = F.conv1d(x, weight, bias, dilation=dilation)
    torch.testing.assert_close(gathered_conv1d(x, weight, bias, dilation), expected)


@pytest.mark.parametrize("stride,groups,kernel_size", [(1, 1, 3), (2, 1, 3), (1, 2, 3), (1, 1, 1)])
def test_conv1d_for_stream_equals_conv1d_on_a_view(stride: int, groups: int, kernel_size: int) -> None:
    """Every path, on a window that is a non-contiguous view (as a held-sample slice is)."""
    torch.manual_seed(1)
    storage = torch.randn(1, 4, 40, dtype=torch.float64)
    window = storage[:, :, 7:29]
    weight = torch.randn(6, 4 // groups, kernel_size, dtype=torch.float64)
    bias = torch.randn(6, dtype=torch.float64)
    expected = F.conv1d(window, weight, bias, stride, 0, 1, groups)
    torch.testing.assert_close(conv1d_for_stream(window, weight, bias, stride, 1, groups), expected)
