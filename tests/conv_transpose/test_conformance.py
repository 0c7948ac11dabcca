"""``ConvTranspose1d`` accepts, computes and rejects what ``torch.nn.ConvTranspose1d`` does.

A randomised module grid (constructor arguments drawn the way torch's own module tests
draw them, large padding included) compares construction, forward and gradients with
torch's module; a ``torch.func`` section compares vmap, jvp, grad and per-sample gradients.
"""

from __future__ import annotations

import random
import warnings

import numpy as np
import pytest
import torch
from torch import nn
from torch.func import functional_call, grad, jacrev, jvp, vmap

from upsampler import ConvTranspose1d

GRID_SEED = 20261127
NUM_MODULES = 40
MAX_KERNEL, MAX_STRIDE, MAX_DILATION, MAX_LENGTH = 8, 4, 3, 9


def _draw_module_args(rng: random.Random) -> tuple[tuple, dict]:
    """Arguments of one module: any the torch constructor takes, padding up to twice the span."""
    groups = rng.choice([1, 1, 2, 3])
    kernel_size = rng.randint(1, MAX_KERNEL)
    stride = rng.randint(1, MAX_STRIDE)
    dilation = rng.randint(1, MAX_DILATION)
    span = dilation * (kernel_size - 1) + 1
    kwargs = {
        "stride": stride,
        "padding": rng.randint(0, 2 * span),
        "output_padding": rng.randint(0, max(stride, dilation) - 1),
        "groups": groups,
        "bias": rng.random() < 0.7,
        "dilation": dilation,
    }
    args = (groups * rng.randint(1, 3), groups * rng.randint(1, 3), kernel_size)
    return args, kwargs


MODULE_GRID = [_draw_module_args(random.Random(GRID_SEED + i)) for i in range(NUM_MODULES)]


def _name(case: tuple[tuple, dict]) -> str:
    (cin, cout, k), kw = case
    return f"c{cin}x{cout}-k{k}-" + "-".join(f"{key[:3]}{int(v)}" for key, v in kw.items())


def _pair(args: tuple, kwargs: dict) -> tuple[ConvTranspose1d, nn.ConvTranspose1d]:
    ours = ConvTranspose1d(*args, **kwargs).double()
    native = nn.ConvTranspose1d(*args, **kwargs).double()
    native.load_state_dict(ours.state_dict())
    return ours, native


def test_grid_has_large_padding_and_too_short_inputs() -> None:
    """The grid holds modules that refuse short inputs (the case construction used to refuse)."""
    too_short = 0
    for (cin, _, k), kw in MODULE_GRID:
        span = kw["dilation"] * (k - 1) + 1
        too_short += span - 2 * kw["padding"] + kw["output_padding"] < 1
    assert too_short >= NUM_MODULES // 5


@pytest.mark.parametrize("case", MODULE_GRID, ids=_name)
def test_random_module_matches_torch(case: tuple[tuple, dict]) -> None:
    args, kwargs = case
    ours, native = _pair(args, kwargs)  # construction succeeds wherever torch's does
    assert ours.extra_repr() == native.extra_repr()
    gen = torch.Generator().manual_seed(len(_name(case)))
    for batch, length in [(2, 1), (1, 3), (3, MAX_LENGTH)]:
        x = torch.randn(batch, args[0], length, dtype=torch.float64, generator=gen)
        try:
            expected = native(x.requires_grad_())
        except RuntimeError:  # torch: "Output size is too small"
            with pytest.raises(ValueError, match=rf"input of {length} time steps is too short"):
                ours(x)
            continue
        out = ours(x)
        torch.testing.assert_close(out, expected)
        grad_output = torch.randn(expected.shape, dtype=torch.float64, generator=gen)
        got = torch.autograd.grad(out, [x, *ours.parameters()], grad_output)
        want = torch.autograd.grad(expected, [x, *native.parameters()], grad_output)
        for g, w in zip(got, want):
            torch.testing.assert_close(g, w)


def test_padding_beyond_half_the_kernel_constructs_and_matches_torch() -> None:
    ours, native = _pair((4, 3, 4), {"stride": 2, "padding": 3})
    x = torch.randn(1, 4, 10, dtype=torch.float64)
    out = ours(x)
    assert out.shape == (1, 3, 16)  # (10 - 1) * 2 - 6 + 4
    torch.testing.assert_close(out, native(x))
    # (T - 1) * 2 - 6 + 4 >= 1 needs T >= 3
    torch.testing.assert_close(ours(x[..., :3]), native(x[..., :3]))
    with pytest.raises(RuntimeError):
        native(x[..., :2])
    with pytest.raises(ValueError, match=r"input of 2 time steps is too short.*shortest allowed is 3"):
        ours(x[..., :2])


def test_empty_batch_backward_gives_zero_grads_like_torch() -> None:
    ours, native = _pair((4, 3, 4), {"stride": 2})
    x = torch.randn(0, 4, 7, dtype=torch.float64)
    ours(x).sum().backward()
    native(x).sum().backward()
    for got, want in zip(ours.parameters(), native.parameters()):
        assert got.grad is not None
        torch.testing.assert_close(got.grad, want.grad)
        assert not got.grad.any()


INTEGER_ARGS = ["in_channels", "out_channels", "kernel_size", "stride", "padding",
                "output_padding", "groups", "dilation"]


@pytest.mark.parametrize("convert", [np.int64, np.int32, torch.tensor], ids=["np64", "np32", "tensor"])
@pytest.mark.parametrize("name", INTEGER_ARGS)
def test_integer_like_arguments(name: str, convert) -> None:
    plain = {"in_channels": 4, "out_channels": 2, "kernel_size": 4, "stride": 2, "padding": 1,
             "output_padding": 1, "groups": 2, "dilation": 1}
    odd = {**plain, name: convert(plain[name])}
    ours = ConvTranspose1d(**odd)
    value = getattr(ours, name)
    assert type(value[0] if isinstance(value, tuple) else value) is int
    native = nn.ConvTranspose1d(**plain)
    native.load_state_dict(ours.state_dict())
    x = torch.randn(1, 4, 5)
    torch.testing.assert_close(ours(x), native(x))
    assert ours.extra_repr() == native.extra_repr()


@pytest.mark.parametrize("channels", [(0, 3), (4, 0)], ids=["in0", "out0"])
def test_zero_channels_raise_at_construction_where_torch_fails_in_forward(channels) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch warns about initialising an empty tensor
        native = nn.ConvTranspose1d(*channels, 4)
    with pytest.raises(RuntimeError):
        native(torch.randn(1, channels[0], 5))
    name = "in_channels" if channels[0] == 0 else "out_channels"
    with pytest.raises(ValueError, match=rf"{name} must be >= 1, got 0"):
        ConvTranspose1d(*channels, 4)


def test_meta_weight_with_cpu_input_names_both_devices() -> None:
    layer = ConvTranspose1d(4, 3, 4, stride=2, device="meta")
    with pytest.raises(ValueError, match=r"input on cpu, weight on meta"):
        layer(torch.randn(1, 4, 5))
    meta_out = layer(torch.randn(1, 4, 5, device="meta"))  # all on meta: shapes only
    assert meta_out.shape == (1, 3, 12) and meta_out.device.type == "meta"


# ---- torch.func ------------------------------------------------------------------------

FUNC_ARGS = ((4, 6, 5), {"stride": 3, "padding": 2, "output_padding": 1, "groups": 2, "dilation": 2})


def _func_pair() -> tuple[ConvTranspose1d, nn.ConvTranspose1d]:
    return _pair(*FUNC_ARGS)


def test_vmap_over_unbatched_inputs_matches_torch() -> None:
    ours, native = _func_pair()
    x = torch.randn(5, 4, 7, dtype=torch.float64)
    torch.testing.assert_close(vmap(ours)(x), vmap(native)(x))
    x3 = torch.randn(3, 2, 4, 7, dtype=torch.float64)  # vmap over batched inputs, dim 1
    torch.testing.assert_close(vmap(ours, in_dims=1)(x3), vmap(native, in_dims=1)(x3))


def test_vmap_over_weights_matches_torch() -> None:
    ours, native = _func_pair()
    params = {name: torch.randn(3, *p.shape, dtype=torch.float64) for name, p in ours.named_parameters()}
    x = torch.randn(2, 4, 6, dtype=torch.float64)

    def run(module: nn.Module):
        return vmap(lambda p: functional_call(module, p, (x,)))(params)

    torch.testing.assert_close(run(ours), run(native))


def test_jvp_matches_torch() -> None:
    ours, native = _func_pair()
    x, tangent = torch.randn(2, 2, 4, 7, dtype=torch.float64).unbind(0)
    params = dict(ours.named_parameters())
    tangents = {k: torch.randn_like(v) for k, v in params.items()}
    for module in (ours, native):
        module.zero_grad()
    got = jvp(lambda x, p: functional_call(ours, p, (x,)), (x, params), (tangent, tangents))
    want = jvp(lambda x, p: functional_call(native, p, (x,)), (x, params), (tangent, tangents))
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w)


def test_grad_and_hessian_vector_product_match_torch() -> None:
    ours, native = _func_pair()
    x = torch.randn(2, 4, 7, dtype=torch.float64)

    def loss(module: nn.Module):
        return lambda x: module(x).square().sum()

    torch.testing.assert_close(grad(loss(ours))(x), grad(loss(native))(x))
    v = torch.randn_like(x)
    hvp_ours = jvp(grad(loss(ours)), (x,), (v,))[1]
    hvp_native = jvp(grad(loss(native)), (x,), (v,))[1]
    torch.testing.assert_close(hvp_ours, hvp_native)
    torch.testing.assert_close(jacrev(ours)(x[:1, :, :3]), jacrev(native)(x[:1, :, :3]))


class _TinyUpsampler(nn.Module):
    """A model built on a transposed conv, for per-sample gradients."""

    def __init__(self, conv: nn.Module) -> None:
        super().__init__()
        self.conv = conv
        self.head = nn.Linear(4, 1).double()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.tanh(self.conv(x))[..., :4])


def test_per_sample_gradients_match_torch() -> None:
    ours, native = _func_pair()
    models = [_TinyUpsampler(ours), _TinyUpsampler(native)]
    models[1].head.load_state_dict(models[0].head.state_dict())
    x = torch.randn(6, 4, 5, dtype=torch.float64)
    target = torch.randn(6, 6, 1, dtype=torch.float64)
    results = []
    for model in models:
        params = {k: v.detach() for k, v in model.named_parameters()}

        def sample_loss(p, xs, ts, model=model):
            out = functional_call(model, p, (xs.unsqueeze(0),))
            return (out.squeeze(0) - ts).square().mean()

        results.append(vmap(grad(sample_loss), in_dims=(None, 0, 0))(params, x, target))
    assert set(results[0]) == set(results[1])
    for name in results[0]:
        assert results[0][name].shape[0] == 6
        torch.testing.assert_close(results[0][name], results[1][name])
    # the per-sample gradients sum to the batch gradient of the summed loss
    first = results[0]["conv.weight"].sum(0)
    models[0].zero_grad()
    sum(((models[0](x[i : i + 1])[0] - target[i]).square().mean()) for i in range(6)).backward()
    torch.testing.assert_close(first, ours.weight.grad)
