"""Snake, the Kaiser-sinc resamplers and Activation1d against BigVGAN's published numbers and
NVIDIA's own torch implementation (tests/upstream.py), lengths against ``T * ratio``."""

from __future__ import annotations

from typing import Any

import math

import pytest
import torch

import upstream
from upsampler.layers import (
    Activation1d,
    ConvTranspose1d,
    DownSample1d,
    Snake,
    SnakeBeta,
    UpSample1d,
)
from upsampler.layers.antialias import kaiser_attenuation, kaiser_beta, kaiser_sinc_filter1d

# BigVGAN's ratio-2 filter as published: first half of the 12 taps (then mirrored)
PUBLISHED_HALF = [0.00202896, 0.00938947, -0.02554346, -0.05765738, 0.12857258, 0.44320980]
PUBLISHED_DECIMALS = 8  # the taps above are rounded to 8 decimals
PUBLISHED_BETA = 4.6638
CHANNELS = 3
LENGTHS = [1, 2, 3, 37]


def alias_free() -> Any:
    """NVIDIA's ``bigvgan.alias_free_activation.torch`` (UpSample1d, DownSample1d,
    Activation1d)."""
    return upstream.bigvgan_module("alias_free_activation.torch")


def upstream_activation() -> torch.nn.Module:
    """NVIDIA's ``Activation1d(SnakeBeta(CHANNELS, alpha_logscale=True))``."""
    snake = upstream.bigvgan_module("activations").SnakeBeta(CHANNELS, alpha_logscale=True)
    return alias_free().Activation1d(snake)


def random_snake(cls: type, logscale: bool, channels: int = CHANNELS) -> torch.nn.Module:
    torch.manual_seed(0)
    act = cls(channels, alpha_logscale=logscale)
    with torch.no_grad():
        for p in act.parameters():
            p.copy_(torch.randn(channels) * 0.5 if logscale else torch.rand(channels) + 0.5)
    return act


def test_ratio2_filter_equals_the_published_taps() -> None:
    taps = kaiser_sinc_filter1d(0.25, 0.3, 12).view(-1)
    assert taps.shape == (12,)
    expected = torch.tensor(PUBLISHED_HALF + PUBLISHED_HALF[::-1])
    # rounding to 8 decimals moves a tap by at most half a unit in the last place
    torch.testing.assert_close(taps, expected, rtol=0, atol=0.5 * 10**-PUBLISHED_DECIMALS)
    assert float(taps.sum()) == pytest.approx(1.0, abs=1e-6)
    attenuation = kaiser_attenuation(12, 0.3)
    assert attenuation == pytest.approx(51.0, abs=0.05)
    assert kaiser_beta(attenuation) == pytest.approx(PUBLISHED_BETA, abs=5e-5)
    assert UpSample1d(CHANNELS).filter.shape == (1, 1, 12)
    assert DownSample1d().lowpass.filter.shape == (1, 1, 12)


@pytest.mark.parametrize("ratio", [2, 3, 4])
def test_filters_equal_the_reference_design(ratio: int) -> None:
    ours, theirs = UpSample1d(CHANNELS, ratio), alias_free().UpSample1d(ratio)
    torch.testing.assert_close(ours.filter, theirs.filter, rtol=0, atol=0)
    torch.testing.assert_close(DownSample1d(ratio).lowpass.filter,
                               alias_free().DownSample1d(ratio).lowpass.filter, rtol=0, atol=0)


@pytest.mark.parametrize("logscale", [False, True])
def test_snake_and_snakebeta_formulas(logscale: bool) -> None:
    x = torch.randn(2, CHANNELS, 5, dtype=torch.float64)
    snake = random_snake(Snake, logscale).double()
    a = snake.alpha.detach().view(1, -1, 1)
    a = a.exp() if logscale else a
    torch.testing.assert_close(snake(x), x + torch.sin(a * x) ** 2 / (a + 1e-9))
    beta = random_snake(SnakeBeta, logscale).double()
    a, b = (p.detach().view(1, -1, 1) for p in (beta.alpha, beta.beta))
    a, b = (a.exp(), b.exp()) if logscale else (a, b)
    torch.testing.assert_close(beta(x), x + torch.sin(a * x) ** 2 / (b + 1e-9))


def test_logscale_initialises_to_zero() -> None:
    assert torch.equal(SnakeBeta(4, alpha_logscale=True).beta, torch.zeros(4))
    assert torch.equal(Snake(4).alpha, torch.ones(4))


@pytest.mark.parametrize("ratio", [2, 3])
@pytest.mark.parametrize("length", LENGTHS)
def test_upsample_and_downsample_lengths_and_reference(ratio: int, length: int) -> None:
    x = torch.randn(2, CHANNELS, length)
    up = UpSample1d(CHANNELS, ratio)
    y = up(x)
    assert y.shape == (2, CHANNELS, length * ratio)
    torch.testing.assert_close(y, alias_free().UpSample1d(ratio)(x))
    down = DownSample1d(ratio)
    assert down(y).shape == (2, CHANNELS, length)
    torch.testing.assert_close(down(y), alias_free().DownSample1d(ratio)(y))


def test_upsample_is_our_conv_transpose_and_follows_loaded_filters() -> None:
    up = UpSample1d(CHANNELS)
    assert isinstance(up.conv, ConvTranspose1d) and up.conv.groups == CHANNELS
    assert list(up.state_dict()) == ["filter"]  # BigVGAN's key, nothing else persistent
    changed = {"filter": up.filter.flip(-1) * 0.5}
    up.load_state_dict(changed)
    torch.testing.assert_close(up.conv.weight, (2 * changed["filter"]).expand(CHANNELS, 1, 12))


@pytest.mark.parametrize("cls", [Snake, SnakeBeta])
@pytest.mark.parametrize("length", LENGTHS)
def test_polyphase_activation_equals_the_plain_path(cls: type, length: int) -> None:
    act = Activation1d(random_snake(cls, logscale=True)).double()
    assert act.polyphase
    x = torch.randn(2, CHANNELS, length, dtype=torch.float64) * 3
    fast = act(x)
    phases = act.forward_phases(x)  # the form export, tracing and torch.compile see
    act.polyphase = False
    plain = act(x)
    assert fast.shape == phases.shape == (2, CHANNELS, length)
    torch.testing.assert_close(fast, plain)  # float64 defaults: rtol 1e-7, atol 1e-7
    torch.testing.assert_close(phases, plain)


@pytest.mark.parametrize("polyphase", [True, False])
def test_activation_equals_the_reference(polyphase: bool) -> None:
    snake = random_snake(SnakeBeta, logscale=True)
    ours = Activation1d(snake, polyphase=polyphase)
    theirs = upstream_activation()
    theirs.load_state_dict(ours.state_dict())
    assert sorted(ours.state_dict()) == sorted(theirs.state_dict())
    x = torch.randn(2, CHANNELS, 50) * 3
    torch.testing.assert_close(ours(x), theirs(x))


@pytest.mark.parametrize("mode", [torch.no_grad, torch.inference_mode])
@pytest.mark.parametrize("length", LENGTHS)
def test_in_place_inference_path_equals_the_reference(mode: Any, length: int) -> None:
    # without autograd Snake and the polyphase edges run in place: same numbers as the
    # reference (torch's own layers) and the recording path, input left untouched
    snake = random_snake(SnakeBeta, logscale=True)
    ours = Activation1d(snake)
    theirs = upstream_activation()
    theirs.load_state_dict(ours.state_dict())
    x = torch.randn(2, CHANNELS, length) * 3
    kept = x.clone()
    recorded = ours(x)
    assert recorded.requires_grad  # the out-of-place path
    with mode():
        fast, bare_snake = ours(x), snake(x)
    torch.testing.assert_close(fast, theirs(x))
    torch.testing.assert_close(fast, recorded.detach())
    torch.testing.assert_close(bare_snake, theirs.act(x))
    assert torch.equal(x, kept)


def test_polyphase_gradients_equal_the_plain_path() -> None:
    act = Activation1d(random_snake(Snake, logscale=False)).double()
    x = torch.randn(1, CHANNELS, 9, dtype=torch.float64, requires_grad=True)
    grads = []
    for polyphase in (True, False):
        act.polyphase = polyphase
        grads.append(torch.autograd.grad(act(x).square().sum(), [x, act.act.alpha]))
    for fast, plain in zip(*grads):
        torch.testing.assert_close(fast, plain)


def test_anti_alias_off_is_the_plain_activation() -> None:
    snake = random_snake(Snake, logscale=False)
    x = torch.randn(1, CHANNELS, 8)
    torch.testing.assert_close(Activation1d(snake, anti_alias=False)(x), snake(x))


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")
def test_activation_torchscript_is_refused_and_trace_matches_eager() -> None:
    # its upsampler is our ConvTranspose1d, which refuses torch.jit.script (deprecated)
    act = Activation1d(random_snake(SnakeBeta, logscale=True)).eval()
    with pytest.raises(TypeError, match="torch.jit.trace"):
        torch.jit.script(act)
    x = torch.randn(2, CHANNELS, 11)
    traced = torch.jit.trace(act, x)
    torch.testing.assert_close(traced(x), act(x))


def test_bad_arguments_name_the_field() -> None:
    with pytest.raises(ValueError, match="channels must be given"):
        Activation1d(torch.nn.ReLU())
    with pytest.raises(ValueError, match="cutoff must be in"):
        kaiser_sinc_filter1d(0.7, 0.3, 12)
    with pytest.raises(ValueError, match="ratio must be >= 1"):
        UpSample1d(CHANNELS, 0)
    assert math.isfinite(kaiser_beta(10.0)) and kaiser_beta(10.0) == 0.0


def test_phase_weights_follow_loaded_filters() -> None:
    act = Activation1d(random_snake(Snake, logscale=False)).double()
    state = act.state_dict()
    state["upsample.filter"] = state["upsample.filter"] * 0.5
    state["downsample.lowpass.filter"] = state["downsample.lowpass.filter"].flip(-1) * 2
    act.load_state_dict(state)
    x = torch.randn(1, CHANNELS, 10, dtype=torch.float64)
    fast, phases = act(x), act.forward_phases(x)
    act.polyphase = False
    torch.testing.assert_close(fast, act(x))
    torch.testing.assert_close(phases, act(x))


def stream_in_chunks(module: torch.nn.Module, x: torch.Tensor, sizes: list[int]) -> torch.Tensor:
    """``module`` stepped over ``x`` in chunks of ``sizes`` (cycled), then flushed."""
    outputs, start, index = [], 0, 0
    with module.streaming():
        while start < x.shape[-1]:
            size = sizes[index % len(sizes)]
            outputs.append(module.step(x[..., start : start + size]))
            start, index = start + size, index + 1
        outputs.append(module.flush())
    return torch.cat(outputs, dim=-1)


@pytest.mark.parametrize("ratio", [2, 3])
def test_upsample_streams_exactly(ratio: int) -> None:
    up = UpSample1d(CHANNELS, ratio).double()
    x = torch.randn(2, CHANNELS, 23, dtype=torch.float64)
    torch.testing.assert_close(stream_in_chunks(up, x, [1, 4, 2, 7]), up(x))


@pytest.mark.parametrize("anti_alias", [True, False])
def test_activation_streams_like_its_forward(anti_alias: bool) -> None:
    act = Activation1d(random_snake(SnakeBeta, logscale=True), anti_alias=anti_alias).double()
    x = torch.randn(1, CHANNELS, 30, dtype=torch.float64) * 3
    streamed = stream_in_chunks(act, x, [5, 1, 3])
    assert streamed.shape == x.shape
    torch.testing.assert_close(streamed, act(x))  # the polyphase forward


def test_parameter_gradients_when_only_snake_records() -> None:
    # the input needs no gradient, Snake's parameters do: the upsampled buffer is fresh,
    # but Snake must not write into it, or its backward would read overwritten values
    act = Activation1d(random_snake(SnakeBeta, logscale=True)).double()
    x = torch.randn(2, CHANNELS, 13, dtype=torch.float64)
    grads = []
    for polyphase in (True, False):
        act.polyphase = polyphase
        grads.append(torch.autograd.grad(act(x).square().sum(), list(act.act.parameters())))
    for fast, plain in zip(*grads):
        torch.testing.assert_close(fast, plain)


@pytest.mark.parametrize("cls", [Snake, SnakeBeta])
def test_snake_in_place_writes_only_without_autograd(cls: type) -> None:
    snake = random_snake(cls, logscale=True)
    x = torch.randn(1, CHANNELS, 6)
    expected = snake(x)
    owned = x.clone()
    with torch.no_grad():
        written = snake(owned, in_place=True)
    assert written.data_ptr() == owned.data_ptr()
    torch.testing.assert_close(written, expected)
    kept = x.clone()
    recorded = snake(kept, in_place=True)  # the parameters record: out of place
    assert recorded.requires_grad and torch.equal(kept, x)
    torch.testing.assert_close(recorded, expected)
