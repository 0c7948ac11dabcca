"""``upsampler.ConvTranspose1d`` as a drop-in for ``torch.nn.ConvTranspose1d``."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from upsampler import ConvTranspose1d

# (in_channels, out_channels, kernel_size, keyword arguments)
CONFIGS = [
    (4, 6, 3, {}),
    (8, 4, 16, {"stride": 8, "padding": 4}),
    (6, 6, 3, {"stride": 2, "padding": 1, "output_padding": 1, "groups": 6}),
    (4, 6, 5, {"stride": 3, "padding": 4, "groups": 2, "dilation": 2, "bias": False}),
    (3, 2, (4,), {"stride": (2,), "padding": (1,), "dilation": (3,), "output_padding": (2,)}),
]
IDS = ["plain", "hifigan", "depthwise", "groups-dilation-nobias", "tuples"]


def _pair(config: tuple, seed: int = 0) -> tuple[ConvTranspose1d, nn.ConvTranspose1d]:
    in_channels, out_channels, kernel_size, kwargs = config
    ours = ConvTranspose1d(in_channels, out_channels, kernel_size, **kwargs)
    native = nn.ConvTranspose1d(in_channels, out_channels, kernel_size, **kwargs)
    native.load_state_dict(ours.state_dict())
    return ours.double(), native.double()


@pytest.mark.parametrize("config", CONFIGS, ids=IDS)
def test_forward_and_grads_match_torch_module(config: tuple) -> None:
    ours, native = _pair(config)
    x = torch.randn(2, config[0], 7, dtype=torch.float64, requires_grad=True)
    out, expected = ours(x), native(x)
    torch.testing.assert_close(out, expected)
    grad_output = torch.randn_like(expected)
    grads = torch.autograd.grad(out, [x, *ours.parameters()], grad_output)
    expected_grads = torch.autograd.grad(expected, [x, *native.parameters()], grad_output)
    for got, want in zip(grads, expected_grads):
        torch.testing.assert_close(got, want)


@pytest.mark.parametrize("config", CONFIGS, ids=IDS)
def test_unbatched_input(config: tuple) -> None:
    ours, native = _pair(config)
    x = torch.randn(config[0], 5, dtype=torch.float64)
    torch.testing.assert_close(ours(x), native(x))


@pytest.mark.parametrize("config", CONFIGS, ids=IDS)
def test_state_dict_loads_both_ways(config: tuple) -> None:
    in_channels, out_channels, kernel_size, kwargs = config
    native = nn.ConvTranspose1d(in_channels, out_channels, kernel_size, **kwargs)
    ours = ConvTranspose1d(in_channels, out_channels, kernel_size, **kwargs)
    ours.load_state_dict(native.state_dict())
    for name, tensor in native.state_dict().items():
        torch.testing.assert_close(ours.state_dict()[name], tensor)
    fresh = nn.ConvTranspose1d(in_channels, out_channels, kernel_size, **kwargs)
    fresh.load_state_dict(ours.state_dict())
    assert list(fresh.state_dict()) == list(ours.state_dict())
    x = torch.randn(1, in_channels, 6)
    torch.testing.assert_close(ours(x), fresh(x))


@pytest.mark.parametrize("config", CONFIGS, ids=IDS)
def test_default_init_equals_torch_for_the_same_seed(config: tuple) -> None:
    in_channels, out_channels, kernel_size, kwargs = config
    torch.manual_seed(123)
    ours = ConvTranspose1d(in_channels, out_channels, kernel_size, **kwargs)
    torch.manual_seed(123)
    native = nn.ConvTranspose1d(in_channels, out_channels, kernel_size, **kwargs)
    assert ours.weight.shape == native.weight.shape
    torch.testing.assert_close(ours.weight, native.weight, rtol=0, atol=0)
    if native.bias is None:
        assert ours.bias is None
    else:
        torch.testing.assert_close(ours.bias, native.bias, rtol=0, atol=0)


@pytest.mark.parametrize("config", CONFIGS, ids=IDS)
def test_repr_and_attributes_match_torch(config: tuple) -> None:
    ours, native = _pair(config)
    assert ours.extra_repr() == native.extra_repr()
    for name in ("in_channels", "out_channels", "kernel_size", "stride", "padding",
                 "output_padding", "dilation", "groups", "padding_mode", "transposed"):
        assert getattr(ours, name) == getattr(native, name), name


@pytest.mark.parametrize("dtype", [torch.float64, torch.bfloat16], ids=str)
def test_factory_kwargs(dtype: torch.dtype) -> None:
    layer = ConvTranspose1d(2, 3, 4, device="cpu", dtype=dtype)
    assert layer.weight.dtype == dtype and layer.bias.dtype == dtype
    assert layer(torch.randn(1, 2, 3, dtype=dtype)).dtype == dtype


def test_output_size_matches_torch() -> None:
    ours, native = _pair(CONFIGS[1])
    x = torch.randn(1, 8, 5, dtype=torch.float64)
    shortest = native(x).shape[-1]
    for size in range(shortest, shortest + 8):
        for output_size in ([size], [1, 4, size]):
            out = ours(x, output_size=output_size)
            assert out.shape[-1] == size
            torch.testing.assert_close(out, native(x, output_size=output_size))


def _weight_normed(config: tuple, form: str) -> tuple[nn.Module, nn.Module]:
    ours, native = _pair(config)
    if form == "legacy":
        return nn.utils.weight_norm(ours), nn.utils.weight_norm(native)
    wn = nn.utils.parametrizations.weight_norm
    return wn(ours), wn(native)


@pytest.mark.filterwarnings("ignore:.*torch.nn.utils.weight_norm.*deprecated")
@pytest.mark.parametrize("form", ["legacy", "parametrizations"])
@pytest.mark.parametrize("config", CONFIGS[1:4], ids=IDS[1:4])
def test_weight_norm_matches_torch(config: tuple, form: str) -> None:
    ours, native = _weight_normed(config, form)
    assert list(ours.state_dict()) == list(native.state_dict())
    x = torch.randn(2, config[0], 6, dtype=torch.float64, requires_grad=True)
    out, expected = ours(x), native(x)
    torch.testing.assert_close(out, expected)
    grad_output = torch.randn_like(expected)
    grads = torch.autograd.grad(out, [x, *ours.parameters()], grad_output)
    expected_grads = torch.autograd.grad(expected, [x, *native.parameters()], grad_output)
    assert len(grads) == len(expected_grads) == 3 + (native.bias is not None)  # x, g, v, bias
    for got, want in zip(grads, expected_grads):
        torch.testing.assert_close(got, want)


TRACE_LENGTH, OTHER_LENGTH = 7, 13


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")
def test_torchscript_is_refused_with_the_alternatives() -> None:
    # torch 2.13 deprecates torch.jit: the layer (and a model holding it) says what to use
    layer = _pair(CONFIGS[1])[0]
    for module in (layer, torch.nn.Sequential(layer, torch.nn.ReLU())):
        with pytest.raises(TypeError, match="torch.jit.script.*torch.jit.trace, torch.export"):
            torch.jit.script(module)


@pytest.mark.parametrize("config", CONFIGS[1:4], ids=IDS[1:4])
def test_trace_equals_eager_at_an_unseen_length(config: tuple) -> None:
    layer = _pair(config)[0]
    example = torch.randn(2, config[0], TRACE_LENGTH, dtype=torch.float64)
    traced = torch.jit.trace(layer, example)
    x = torch.randn(3, config[0], OTHER_LENGTH, dtype=torch.float64)
    out = traced(x)
    assert out.shape == layer(x).shape
    torch.testing.assert_close(out, layer(x))


@pytest.mark.parametrize(
    ("args", "kwargs", "error", "pattern"),
    [
        ((4, 4, 3), {"padding_mode": "reflect"}, ValueError, r"zeros.*padding_mode='reflect'"),
        ((4, 4, 3), {"stride": 2, "output_padding": 2}, ValueError, r"output_padding=2 with stride=2"),
        ((4, 4, 3), {"dilation": 3, "output_padding": 3}, ValueError, r"output_padding=3 .*dilation=3"),
        ((4, 6, 3), {"groups": 4}, ValueError, r"out_channels=6 must be divisible by groups=4"),
        ((6, 4, 3), {"groups": 4}, ValueError, r"in_channels=6 must be divisible by groups=4"),
        ((4, 4, 3), {"groups": 0}, ValueError, r"groups must be >= 1, got 0"),
        ((0, 4, 3), {}, ValueError, r"in_channels must be >= 1, got 0"),
        ((4, 0, 3), {}, ValueError, r"out_channels must be >= 1, got 0"),
        ((4, 4, 0), {}, ValueError, r"kernel_size must be >= 1, got 0"),
        ((4, 4, 3), {"stride": 0}, ValueError, r"stride must be >= 1, got 0"),
        ((4, 4, 3), {"dilation": 0}, ValueError, r"dilation must be >= 1, got 0"),
        ((4, 4, 3), {"padding": -1}, ValueError, r"padding must be >= 0, got -1"),
        ((4, 4, 3), {"output_padding": -1}, ValueError, r"output_padding must be >= 0, got -1"),
        ((4, 4, (3, 3)), {}, ValueError, r"kernel_size must be an int or a 1-tuple, got \(3, 3\)"),
        ((4, 4, 3.0), {}, TypeError, r"kernel_size must be an int or a 1-tuple of int, got 3\.0"),
        ((4, 4, 3), {"stride": "2"}, TypeError, r"stride must be an int or a 1-tuple of int, got '2'"),
        ((4.0, 4, 3), {}, TypeError, r"in_channels must be an int or a 1-tuple of int, got 4\.0"),
        ((4, 4, 3), {"stride": torch.tensor(2.0)}, TypeError, r"stride must be an int or a 1-tuple of int"),
        ((4, 4, 3), {"groups": True}, TypeError, r"groups must be an int or a 1-tuple of int, got True"),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_bad_constructor_arguments_raise(args: tuple, kwargs: dict, error: type, pattern: str) -> None:
    with pytest.raises(error, match=pattern):
        ConvTranspose1d(*args, **kwargs)


@pytest.mark.parametrize(
    ("shape", "output_size", "pattern"),
    [
        ((5,), None, r"input must be 2-D .* got shape \(5,\)"),
        ((1, 1, 4, 5), None, r"input must be 2-D .* got shape \(1, 1, 4, 5\)"),
        ((1, 3, 5), None, r"input has 3 channels .*in_channels=4"),
        ((1, 4, 0), None, r"at least one time step"),
        ((1, 4, 5), [8], r"requested an output size of 8, but valid sizes range from 9 to 10"),
        ((1, 4, 5), [11], r"requested an output size of 11, but valid sizes range from 9 to 10"),
        ((1, 4, 5), [1, 2, 3, 4], r"output_size must have 1 or 3 elements \(got 4\)"),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_bad_forward_arguments_raise(shape: tuple, output_size: list | None, pattern: str) -> None:
    layer = ConvTranspose1d(4, 4, 3, stride=2, padding=1)
    x = torch.randn(shape)
    with pytest.raises(ValueError, match=pattern):
        layer(x, output_size=output_size)
