"""The gathered-taps convolution equals torch's conv1d on the windows streams give it."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from upsampler.streaming.short_conv import (
    TAP_BY_TAP_MIN_OUTPUTS,
    TapWeights,
    conv1d_for_stream,
    gathered_conv1d,
    tap_by_tap_conv1d,
)


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


@pytest.mark.parametrize("kernel_size,dilation", [(3, 1), (7, 3), (11, 5)])
@pytest.mark.parametrize("with_bias", [True, False])
def test_tap_by_tap_conv1d_equals_conv1d_on_a_view(
    kernel_size: int, dilation: int, with_bias: bool
) -> None:
    torch.manual_seed(2)
    storage = torch.randn(1, 6, 700, dtype=torch.float64)
    window = storage[:, :, 5:690]  # a held-sample slice: time contiguous, channels not
    weight = torch.randn(5, 6, kernel_size, dtype=torch.float64)
    bias = torch.randn(5, dtype=torch.float64) if with_bias else None
    expected = F.conv1d(window, weight, bias, dilation=dilation)
    taps = weight.permute(2, 0, 1).contiguous()
    torch.testing.assert_close(tap_by_tap_conv1d(window, taps, bias, dilation), expected)


def test_long_windows_follow_a_weight_changed_in_place() -> None:
    """The per-tap weight copy is refreshed when the weight changes (no stale taps)."""
    torch.manual_seed(3)
    x = torch.randn(1, 4, TAP_BY_TAP_MIN_OUTPUTS + 10)
    weight = torch.randn(3, 4, 5)
    tap_weights = TapWeights()
    with torch.no_grad():
        first = conv1d_for_stream(x, weight, None, 1, 2, 1, tap_weights)
        torch.testing.assert_close(first, F.conv1d(x, weight, dilation=2))
        weight.mul_(-0.5)
        second = conv1d_for_stream(x, weight, None, 1, 2, 1, tap_weights)
        torch.testing.assert_close(second, F.conv1d(x, weight, dilation=2))
        other = torch.randn(3, 4, 5)
        third = conv1d_for_stream(x, other, None, 1, 2, 1, tap_weights)
        torch.testing.assert_close(third, F.conv1d(x, other, dilation=2))


def test_long_windows_keep_the_weight_gradient() -> None:
    torch.manual_seed(4)
    x = torch.randn(1, 4, TAP_BY_TAP_MIN_OUTPUTS + 3, dtype=torch.float64)
    weight = torch.randn(3, 4, 3, dtype=torch.float64, requires_grad=True)
    conv1d_for_stream(x, weight, None, 1, 1, 1, TapWeights()).square().sum().backward()
    expected_weight = weight.detach().clone().requires_grad_(True)
    F.conv1d(x, expected_weight).square().sum().backward()
    torch.testing.assert_close(weight.grad, expected_weight.grad)


def test_long_windows_of_a_layer_built_in_inference_mode() -> None:
    """Inference tensors keep no version counter: their taps are taken per call."""
    torch.manual_seed(5)
    with torch.inference_mode():
        x = torch.randn(1, 4, TAP_BY_TAP_MIN_OUTPUTS + 6)
        weight = torch.randn(3, 4, 3)
        tap_weights = TapWeights()
        ours = conv1d_for_stream(x, weight, None, 1, 3, 1, tap_weights)
        torch.testing.assert_close(ours, F.conv1d(x, weight, dilation=3))
        weight.mul_(2.0)  # allowed on an inference tensor inside inference mode
        ours = conv1d_for_stream(x, weight, None, 1, 3, 1, tap_weights)
        torch.testing.assert_close(ours, F.conv1d(x, weight, dilation=3))
