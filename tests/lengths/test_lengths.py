"""Length arithmetic, checked by running layers against ``length * stride``.

Expected lengths come from running torch's native transposed convolution (or ours)
and comparing with ``length * stride``, never from the formula in ``upsampler.lengths``.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from upsampler import ConvTranspose1d
from upsampler.lengths import (
    exact_padding,
    exact_trim,
    kernel_sizes_for_rates,
    output_size_range,
    plan_upsample_rates,
    transposed_output_length,
)

KERNELS = range(1, 33)
STRIDES = range(1, 17)
DILATIONS = range(1, 5)
LENGTHS = (1, 2, 7)


def _native_length(length: int, kernel_size: int, stride: int, padding: int,
                   output_padding: int, dilation: int) -> int | None:
    """Output length of torch's own op, or None where torch rejects the arguments."""
    x = torch.zeros(1, 1, length)
    w = torch.zeros(1, 1, kernel_size)
    try:
        out = F.conv_transpose1d(x, w, stride=stride, padding=padding,
                                 output_padding=output_padding, dilation=dilation)
    except RuntimeError:
        return None
    return out.shape[-1]


def _no_exact_pair_exists(kernel_size: int, stride: int, dilation: int) -> bool:
    """Brute force every (padding, output_padding) torch accepts, by running torch's op."""
    span = (kernel_size - 1) * dilation + 1
    for padding in range(span + 1):
        for output_padding in range(max(stride, dilation)):
            if all(_native_length(n, kernel_size, stride, padding, output_padding, dilation)
                   == n * stride for n in LENGTHS):
                return False
    return True


@pytest.mark.parametrize("dilation", DILATIONS)
def test_exact_padding_gives_length_times_stride(dilation: int) -> None:
    x = {n: torch.randn(1, 1, n) for n in LENGTHS}
    failures = 0
    for kernel_size in KERNELS:
        for stride in STRIDES:
            try:
                padding, output_padding = exact_padding(kernel_size, stride, dilation)
            except ValueError:
                failures += 1
                assert _no_exact_pair_exists(kernel_size, stride, dilation), (kernel_size, stride)
                continue
            layer = ConvTranspose1d(1, 1, kernel_size, stride, padding, output_padding,
                                    dilation=dilation)
            for length, signal in x.items():
                assert layer(signal).shape[-1] == length * stride, (kernel_size, stride, length)
    # the only failures are even kernels at stride 1 without dilation
    assert failures == (len(KERNELS) // 2 if dilation == 1 else 0)


def test_exact_padding_matches_hifigan_when_k_minus_u_is_even() -> None:
    for kernel_size, stride in [(16, 8), (4, 2), (8, 4), (11, 5), (20, 10)]:
        assert exact_padding(kernel_size, stride) == ((kernel_size - stride) // 2, 0)


def test_exact_padding_error_says_what_to_do() -> None:
    with pytest.raises(ValueError, match=r"kernel_size=4, stride=1, dilation=1.*exact_trim"):
        exact_padding(4, 1)


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("dilation", DILATIONS)
def test_exact_trim_gives_length_times_stride(dilation: int, causal: bool) -> None:
    x = {n: torch.randn(1, 1, n) for n in LENGTHS}
    for kernel_size in KERNELS:
        for stride in STRIDES:
            layer = ConvTranspose1d(1, 1, kernel_size, stride, dilation=dilation)
            if (kernel_size - 1) * dilation + 1 < stride:
                # the unpadded output is already short: nothing can be trimmed to fit
                assert layer(x[1]).shape[-1] < stride
                with pytest.raises(ValueError, match=f"shorter than stride={stride}"):
                    exact_trim(kernel_size, stride, dilation, causal)
                continue
            left, right = exact_trim(kernel_size, stride, dilation, causal)
            assert left >= 0 and right >= 0
            if causal:
                assert left == 0
            else:
                assert right <= left <= right + 1
            for length, signal in x.items():
                out = layer(signal)
                assert out.shape[-1] - left - right == length * stride


@pytest.mark.parametrize(("kernel_size", "stride", "dilation"),
                         [(16, 8, 1), (10, 5, 1), (3, 2, 1), (5, 2, 3), (7, 3, 2)])
def test_exact_trim_aligns_with_exact_padding(kernel_size: int, stride: int, dilation: int) -> None:
    """Trimming the unpadded output gives the same samples as padding does."""
    x = torch.randn(2, 3, 9)
    w = torch.randn(3, 2, kernel_size)
    left, right = exact_trim(kernel_size, stride, dilation)
    padding, output_padding = exact_padding(kernel_size, stride, dilation)
    full = F.conv_transpose1d(x, w, stride=stride, dilation=dilation)
    padded = F.conv_transpose1d(x, w, stride=stride, padding=padding,
                                output_padding=output_padding, dilation=dilation)
    torch.testing.assert_close(full[..., left:full.shape[-1] - right], padded)


def test_transposed_output_length_matches_torch_on_a_sample() -> None:
    for length, kernel_size, stride, padding, output_padding, dilation in [
        (4, 3, 1, 0, 0, 1), (4, 3, 2, 1, 0, 1), (5, 16, 8, 4, 0, 1), (3, 5, 3, 6, 2, 2),
    ]:
        expected = _native_length(length, kernel_size, stride, padding, output_padding, dilation)
        assert transposed_output_length(
            length, kernel_size, stride, padding, output_padding, dilation) == expected


def test_output_size_range_matches_torch_module() -> None:
    native = torch.nn.ConvTranspose1d(1, 1, 5, stride=3, padding=2)
    x = torch.randn(1, 1, 6)
    shortest, longest = output_size_range(6, 5, 3, 2)
    assert native(x, output_size=[shortest]).shape[-1] == shortest
    assert native(x, output_size=[longest]).shape[-1] == longest
    with pytest.raises(ValueError):
        native(x, output_size=[longest + 1])


@pytest.mark.parametrize(("hop_length", "expected"),
                         [(256, [8, 8, 2, 2]), (200, [5, 5, 4, 2]), (300, [5, 5, 4, 3])])
def test_plan_upsample_rates_examples(hop_length: int, expected: list[int]) -> None:
    assert plan_upsample_rates(hop_length) == expected


@pytest.mark.parametrize("hop_length", [64, 120, 240, 275, 320, 441, 512, 1024, 12])
@pytest.mark.parametrize("max_rate", [4, 8, 11])
def test_plan_upsample_rates_product_and_bounds(hop_length: int, max_rate: int) -> None:
    if max(p for p in range(2, hop_length + 1)
           if hop_length % p == 0 and all(p % q for q in range(2, p))) > max_rate:
        with pytest.raises(ValueError, match=f"max_rate={max_rate}"):
            plan_upsample_rates(hop_length, max_rate)
        return
    rates = plan_upsample_rates(hop_length, max_rate)
    assert math.prod(rates) == hop_length
    assert all(2 <= rate <= max_rate for rate in rates)
    assert rates == sorted(rates, reverse=True)


def test_plan_upsample_rates_rejects_a_large_prime_factor() -> None:
    with pytest.raises(ValueError, match=r"hop_length=220 has the prime factor 11 > max_rate=8"):
        plan_upsample_rates(220)


@pytest.mark.parametrize(
    ("call", "pattern"),
    [
        (lambda: exact_padding(0, 2), r"kernel_size must be >= 1, got 0"),
        (lambda: exact_padding(4, 0), r"stride must be >= 1, got 0"),
        (lambda: exact_trim(4, 2, dilation=0), r"dilation must be >= 1, got 0"),
        (lambda: transposed_output_length(0, 3), r"length must be >= 1, got 0"),
        (lambda: plan_upsample_rates(0), r"hop_length must be >= 1, got 0"),
        (lambda: plan_upsample_rates(256, max_rate=1), r"max_rate must be >= 2, got 1"),
        (lambda: kernel_sizes_for_rates([8, 0]), r"upsample_rates\[1\] must be >= 1, got 0"),
    ],
)
def test_bad_arguments_raise(call, pattern: str) -> None:
    with pytest.raises(ValueError, match=pattern):
        call()
