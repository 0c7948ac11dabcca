"""The upsampler registry: exact lengths, each kind against an independent construction."""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

from upsampler import HiFiGANGenerator
from upsampler.layers import UPSAMPLERS, make_upsampler
from upsampler.layers.upsamplers import ResizeConv1d, SubpixelConv1d, icnr_
from upsampler.lengths import resize_conv_kernel_size, subpixel_kernel_size

KINDS = ("transposed", "nearest_conv", "linear_conv", "subpixel", "subpixel_icnr")
# odd strides, k = 2s, k not a multiple of s, k < s, stride 1
GRID = [(8, 16), (2, 4), (3, 5), (5, 10), (2, 3), (4, 2), (1, 3), (8, 12)]


def test_registry_holds_every_kind() -> None:
    assert set(KINDS) == set(UPSAMPLERS)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(("stride", "kernel_size"), GRID)
@pytest.mark.parametrize("length", [1, 7])
def test_length_is_exactly_t_times_stride(
    kind: str, stride: int, kernel_size: int, length: int
) -> None:
    torch.manual_seed(0)
    layer = make_upsampler(kind, 4, 3, stride, kernel_size)
    out = layer(torch.randn(2, 4, length))
    assert out.shape == (2, 3, length * stride)


@pytest.mark.parametrize("kind", KINDS)
def test_gradients_reach_the_weight(kind: str) -> None:
    torch.manual_seed(0)
    layer = make_upsampler(kind, 3, 2, 4, 8)
    layer(torch.randn(1, 3, 5)).square().sum().backward()
    assert layer.weight.grad is not None and layer.weight.grad.abs().sum() > 0


def test_transposed_keeps_hifigan_padding() -> None:
    torch.manual_seed(0)
    layer = make_upsampler("transposed", 4, 3, 8, 16)
    x = torch.randn(2, 4, 6)
    # HiFi-GAN: padding (k - u) // 2 = 4, no output_padding
    expected = F.conv_transpose1d(x, layer.weight, layer.bias, stride=8, padding=4)
    torch.testing.assert_close(layer(x), expected)


@pytest.mark.parametrize(
    ("kernel_size", "stride", "resize_kernel", "subpixel_kernel"),
    [(16, 8, 17, 3), (4, 2, 5, 3), (3, 2, 3, 3), (8, 8, 9, 1), (40, 8, 41, 5), (10, 5, 11, 3)],
)
def test_derived_kernel_sizes(
    kernel_size: int, stride: int, resize_kernel: int, subpixel_kernel: int
) -> None:
    assert resize_conv_kernel_size(kernel_size) == resize_kernel
    assert subpixel_kernel_size(kernel_size, stride) == subpixel_kernel
    assert make_upsampler("nearest_conv", 2, 2, stride, kernel_size).kernel_size == (resize_kernel,)
    assert make_upsampler("subpixel", 2, 2, stride, kernel_size).kernel_size == (subpixel_kernel,)


def test_nearest_conv_is_repeat_then_conv() -> None:
    torch.manual_seed(0)
    layer = make_upsampler("nearest_conv", 3, 2, 4, 8)
    x = torch.randn(2, 3, 5)
    resized = torch.repeat_interleave(x, 4, dim=-1)
    expected = F.conv1d(resized, layer.weight, layer.bias, padding=4)  # kernel 9
    torch.testing.assert_close(layer(x), expected)


def test_linear_resize_hand_worked() -> None:
    # align_corners=False, scale 2: sources -0.25, 0.25, 0.75, 1.25 -> 0, 0.5, 1.5, 2 (clamped)
    layer = ResizeConv1d(1, 1, 3, 2, mode="linear", bias=False)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[[0.0, 1.0, 0.0]]]))
    out = layer(torch.tensor([[[0.0, 2.0]]]))
    torch.testing.assert_close(out, torch.tensor([[[0.0, 0.5, 1.5, 2.0]]]))


def test_pixel_shuffle_hand_worked() -> None:
    layer = SubpixelConv1d(1, 1, 1, 3, bias=False)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([1.0, 2.0, 3.0]).view(3, 1, 1))
    out = layer(torch.tensor([[[1.0, 10.0]]]))
    torch.testing.assert_close(out, torch.tensor([[[1.0, 2.0, 3.0, 10.0, 20.0, 30.0]]]))


def test_icnr_equals_conv_then_nearest_and_nearest_then_dilated_conv() -> None:
    torch.manual_seed(0)
    stride = 4
    layer = make_upsampler("subpixel_icnr", 3, 2, stride, 12)  # conv kernel 3
    base_weight, base_bias = layer.weight[::stride], layer.bias[::stride]  # phase 0 of each
    x = torch.randn(2, 3, 6, dtype=torch.float32)
    low_rate = F.conv1d(x, base_weight, base_bias, padding=1)
    torch.testing.assert_close(layer(x), torch.repeat_interleave(low_rate, stride, dim=-1))
    resized = torch.repeat_interleave(x, stride, dim=-1)
    dilated = F.conv1d(resized, base_weight, base_bias, padding=stride, dilation=stride)
    torch.testing.assert_close(layer(x), dilated)


def test_icnr_survives_weight_norm_and_constant_stays_constant() -> None:
    torch.manual_seed(0)
    layer = make_upsampler("subpixel_icnr", 3, 2, 8, 16)
    layer = torch.nn.utils.parametrizations.weight_norm(layer)
    out = layer(torch.ones(1, 3, 10))[..., 8:-8]  # away from the zero-padded edges
    torch.testing.assert_close(out, out[..., :1].expand_as(out))


def test_plain_subpixel_is_not_constant_on_constant_input() -> None:
    torch.manual_seed(0)
    out = make_upsampler("subpixel", 3, 2, 8, 16)(torch.ones(1, 3, 10))[..., 8:-8]
    assert (out.amax(-1) - out.amin(-1)).min() > 1e-3


def test_icnr_rejects_a_weight_that_is_not_phase_stacked() -> None:
    with pytest.raises(ValueError, match="scale_factor"):
        icnr_(torch.zeros(5, 1, 3), 2)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"kind": "deconv"}, "kind"),
        ({"stride": 0}, "stride"),
        ({"kernel_size": 0}, "kernel_size"),
        ({"in_channels": 0}, "in_channels"),
    ],
)
def test_make_upsampler_rejects_bad_arguments(kwargs: dict, message: str) -> None:
    arguments = {"kind": "nearest_conv", "in_channels": 2, "out_channels": 2, "stride": 2,
                 "kernel_size": 4, **kwargs}
    with pytest.raises(ValueError, match=message):
        make_upsampler(**arguments)


def test_resize_conv_rejects_even_kernel_and_unknown_mode() -> None:
    with pytest.raises(ValueError, match="odd"):
        ResizeConv1d(1, 1, 4, 2)
    with pytest.raises(ValueError, match="mode"):
        ResizeConv1d(1, 1, 3, 2, mode="cubic")


@pytest.mark.parametrize("kind", KINDS)
def test_generator_takes_every_kind(kind: str) -> None:
    torch.manual_seed(0)
    generator = HiFiGANGenerator.from_preset("v1", upsample_initial_channel=16, upsampler=kind)
    with torch.no_grad():
        out = generator(torch.randn(1, 80, 3))
    assert out.shape == (1, 1, 3 * 256)


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")
@pytest.mark.parametrize("kind", KINDS[1:])
def test_new_kinds_script_like_eager(kind: str) -> None:
    torch.manual_seed(0)
    layer = make_upsampler(kind, 3, 2, 4, 8).eval()
    x = torch.randn(1, 3, 5)
    torch.testing.assert_close(torch.jit.script(layer)(x), layer(x))
