"""The streaming protocol: every layer, block and upsampler kind streams exactly.

Expected values: the module's own offline ``forward`` on the whole input, and receptive
fields measured with autograd (which input samples each output sample's gradient reaches).
"""

from __future__ import annotations

import math
from fractions import Fraction

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from upsampler import HiFiGANGenerator, StreamingGenerator
from upsampler.layers import MRF, UPSAMPLERS, ResBlock1, ResBlock2, UpsampleBlock, make_upsampler
from upsampler.streaming import (
    Context,
    PaddedFilter,
    Pointwise,
    StreamClosedError,
    StreamSession,
    new_stream,
    stream_context,
)
from upsampler.layers.upsample_block import TrimmedConvTranspose1d

CHANNELS, BATCH, LENGTH = 4, 2, 40
CHUNK_SIZES = [1, 2, 3, 7, 64]
NUM_MELS, MEL_FRAMES = 80, 16  # > the look-ahead of the small generators (6 to 9 frames)
STEADY_FRAMES = 4  # frames streamed after the first sample became final


def stream_through(stream: object, x: Tensor, sizes: list[int]) -> Tensor:
    outs, start = [], 0
    for size in sizes:
        outs.append(stream.step(x[:, :, start : start + size]))
        start += size
    return torch.cat(outs + [stream.flush()], dim=-1)


def pure_stream_through(layer: nn.Module, x: Tensor, chunk: int) -> Tensor:
    """The pure API: state in, state out, chunks a multiple of the stream's quantum."""
    stream = new_stream(layer)
    state = stream.init_state(x.shape[0], x.dtype, x.device)
    chunk *= stream.quantum
    outs = []
    for start in range(0, x.shape[-1], chunk):
        y, state = stream.step(x[:, :, start : start + chunk], state)
        outs.append(y)
    return torch.cat(outs + [stream.flush(state)], dim=-1)


def fixed_sizes(length: int, chunk: int) -> list[int]:
    return [min(chunk, length - start) for start in range(0, length, chunk)]


def random_sizes(length: int, seed: int) -> list[int]:
    """Random chunk sizes (empty chunks included) summing to ``length``."""
    rng = torch.Generator().manual_seed(seed)
    sizes, left = [], length
    while left:
        size = int(torch.randint(0, min(left, 9) + 1, (1,), generator=rng))
        sizes.append(size)
        left -= size
    return sizes


# ---- BigVGAN-shaped layers written on the protocol (ratio 2, 12 taps, replicate padding)

FILTER_TAPS = 12


class ReplicateUpsample(PaddedFilter):
    """BigVGAN's ``UpSample1d(2)``: replicate-pad 5, ``2 * conv_transpose(stride 2)``, cut 15
    each side. Output pair ``(2w, 2w + 1)`` reads padded samples ``w + 2 .. w + 8``, so the
    window is 7 samples and 3 padded samples on each side are never read."""

    def __init__(self, channels: int) -> None:
        super().__init__(channels, span=7, pad_left=3, pad_right=3, pad_mode="replicate", up=2)
        self.register_buffer("filter", torch.rand(channels, 1, FILTER_TAPS))

    def valid(self, x: Tensor) -> Tensor:
        full = 2 * F.conv_transpose1d(x, self.filter, stride=2, groups=x.shape[1])
        first = FILTER_TAPS - 1  # the first position every tap of the window covers
        return full[:, :, first : first + 2 * (x.shape[-1] - self.span + 1)]


class ReplicateDownsample(PaddedFilter):
    """BigVGAN's ``DownSample1d(2)``: replicate-pad 5 left and 6 right, 12 taps, stride 2."""

    def __init__(self, channels: int) -> None:
        super().__init__(channels, FILTER_TAPS, 5, 6, pad_mode="replicate", hop=2)
        self.register_buffer("filter", torch.rand(channels, 1, FILTER_TAPS) / FILTER_TAPS)

    def valid(self, x: Tensor) -> Tensor:
        return F.conv1d(x, self.filter, stride=2, groups=x.shape[1])


class Snake(Pointwise):
    """``x + sin(a x)^2 / a`` per channel."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.alpha = nn.Parameter(torch.rand(channels, 1) + 0.5)

    def forward(self, x: Tensor) -> Tensor:
        return x + torch.sin(self.alpha * x) ** 2 / self.alpha


def anti_aliased_activation(channels: int) -> nn.Module:
    """BigVGAN's ``Activation1d``: up x2 -> Snake -> down x2, ``T`` samples in and out."""
    return nn.Sequential(ReplicateUpsample(channels), Snake(channels), ReplicateDownsample(channels))


def make_layer(name: str) -> nn.Module:
    torch.manual_seed(0)
    layers = {
        "conv_dilated": lambda: nn.Conv1d(CHANNELS, 6, 5, dilation=2, padding=4),
        "conv_asymmetric_reach": lambda: nn.Conv1d(CHANNELS, 6, 7, padding=1),
        "conv_replicate": lambda: nn.Conv1d(CHANNELS, 6, 5, padding=2, padding_mode="replicate"),
        "conv_strided": lambda: nn.Conv1d(CHANNELS, 6, 4, stride=2, padding=1),
        "conv_same_groups": lambda: nn.Conv1d(CHANNELS, 6, 4, padding="same", groups=2),
        "resblock1": lambda: ResBlock1(CHANNELS, 3, (1, 3, 5)),
        "resblock2": lambda: ResBlock2(CHANNELS, 5, (2, 6)),
        "mrf": lambda: MRF.hifigan(CHANNELS, "1", (3, 5), ((1, 3), (2,))),
        "upsample_block": lambda: UpsampleBlock.hifigan(CHANNELS, 3, 3, 7, "2", (3,), ((1, 2),)),
        "trimmed_stride_1": lambda: TrimmedConvTranspose1d(CHANNELS, 3, 1, 4),
        "bigvgan_upsample": lambda: ReplicateUpsample(CHANNELS),
        "bigvgan_downsample": lambda: ReplicateDownsample(CHANNELS),
        "bigvgan_activation": lambda: anti_aliased_activation(CHANNELS),
        **{f"upsampler_{kind}": (lambda kind=kind: make_upsampler(kind, CHANNELS, 3, 4, 8))
           for kind in UPSAMPLERS},
    }
    return layers[name]()


LAYERS = [
    "conv_dilated", "conv_asymmetric_reach", "conv_replicate", "conv_strided",
    "conv_same_groups", "resblock1", "resblock2", "mrf", "upsample_block", "trimmed_stride_1",
    "bigvgan_upsample", "bigvgan_downsample", "bigvgan_activation",
    *[f"upsampler_{kind}" for kind in UPSAMPLERS],
]


@pytest.mark.parametrize("name", LAYERS)
def test_layer_streams_equal_offline(name: str) -> None:
    layer = make_layer(name).eval()
    x = torch.randn(BATCH, CHANNELS, LENGTH, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = layer(x)
        for sizes in [fixed_sizes(LENGTH, c) for c in CHUNK_SIZES] + [random_sizes(LENGTH, 2)]:
            torch.testing.assert_close(stream_through(StreamSession(layer), x, sizes), expected)
        torch.testing.assert_close(pure_stream_through(layer, x, 3), expected)
        short = x[:, :, :6]  # fewer samples than some windows span
        torch.testing.assert_close(
            stream_through(StreamSession(layer), short, [1, 2, 3]), layer(short)
        )


def measured_reach(layer: nn.Module, stride: Fraction) -> tuple[Fraction, Fraction]:
    """``max(j - t * stride)`` and ``max(t * stride - j)`` over outputs ``j`` whose gradient
    reaches input ``t``, away from the edges (float64: no tap underflows)."""
    layer = layer.double()
    x = torch.randn(1, CHANNELS, LENGTH, dtype=torch.float64, requires_grad=True)
    y = layer(x)
    left = right = None
    for j in range(y.shape[-1] // 3, 2 * y.shape[-1] // 3):
        (grad,) = torch.autograd.grad(y[0, :, j].sum(), x, retain_graph=True)
        read = grad[0].abs().sum(0).nonzero().flatten().tolist()
        here_left, here_right = j - read[0] * stride, read[-1] * stride - j
        left = here_left if left is None else max(left, here_left)
        right = here_right if right is None else max(right, here_right)
    return left, right


@pytest.mark.parametrize(
    "name", ["conv_dilated", "conv_asymmetric_reach", "conv_strided", "resblock1", "mrf",
             "upsample_block", "upsampler_transposed", "upsampler_subpixel",
             "upsampler_nearest_conv", "bigvgan_downsample"],
)
def test_context_is_the_measured_reach(name: str) -> None:
    """The declared (left, right) equals the reach autograd measures (tight bounds)."""
    torch.manual_seed(3)
    layer = make_layer(name)
    context = stream_context(layer)
    assert (context.left, context.right) == measured_reach(layer, Fraction(context.stride))


def test_replicate_upsample_is_bigvgans_formula() -> None:
    """The window form equals BigVGAN's: replicate-pad 5, 2 * conv_transpose, cut 15 each
    side (and every window reads a subset of its 7 samples, so the context is a bound:
    one sample wider than the reach on each side)."""
    layer = make_layer("bigvgan_upsample")
    x = torch.randn(BATCH, CHANNELS, LENGTH)
    padded = F.pad(x, (5, 5), mode="replicate")
    full = 2 * F.conv_transpose1d(padded, layer.filter, stride=2, groups=CHANNELS)
    torch.testing.assert_close(layer(x), full[:, :, 15:-15])
    assert layer(x).shape[-1] == 2 * LENGTH
    assert measured_reach(layer, Fraction(2)) == (6, 5)
    assert stream_context(layer) == Context(2, 7, 6)


def test_context_hand_worked() -> None:
    """Conv k5 d2 p4: output j reads j - 4 .. j + 4. Transposed k8 s4 p2: left k-1-p = 5,
    right p = 2. Downsampler (12 taps, stride 2, pads 5/6): output j reads 2j - 5 .. 2j + 6,
    in output units left 5/2, right 3. Activation1d (up, Snake, down): stride 1."""
    assert stream_context(make_layer("conv_dilated")) == Context(1, 4, 4)
    assert stream_context(make_layer("upsampler_transposed")) == Context(4, 5, 2)
    assert stream_context(make_layer("bigvgan_downsample")) == Context(Fraction(1, 2),
                                                                      Fraction(5, 2), 3)
    assert stream_context(make_layer("bigvgan_activation")).stride == 1


# ---- generators: every upsampler kind, presets, a non-power-of-two hop -----------------

GENERATORS = {
    "v1": dict(upsample_rates=(8, 8, 2, 2), upsample_kernel_sizes=(16, 16, 4, 4)),
    "hop300": dict(upsample_rates=(5, 5, 4, 3), upsample_kernel_sizes=(10, 10, 8, 6)),
}


def small_generator(layout: str, upsampler: str) -> HiFiGANGenerator:
    torch.manual_seed(0)
    return HiFiGANGenerator(
        **GENERATORS[layout], upsample_initial_channel=16, resblock_kernel_sizes=(3,),
        resblock_dilation_sizes=((1, 3, 5),), upsampler=upsampler,
    ).eval()


@pytest.mark.parametrize("upsampler", list(UPSAMPLERS))
@pytest.mark.parametrize("layout", list(GENERATORS))
def test_every_upsampler_kind_streams_exactly(layout: str, upsampler: str) -> None:
    generator = small_generator(layout, upsampler)
    generator.remove_weight_norm()
    mel = torch.randn(1, NUM_MELS, MEL_FRAMES, generator=torch.Generator().manual_seed(5))
    assert StreamingGenerator(generator).look_ahead_frames + STEADY_FRAMES < MEL_FRAMES
    with torch.no_grad():
        expected = generator(mel)
        for sizes in [fixed_sizes(MEL_FRAMES, 1), random_sizes(MEL_FRAMES, 6)]:
            got = stream_through(StreamingGenerator(generator), mel, sizes)
            assert got.shape == (1, 1, MEL_FRAMES * generator.hop_length)
            torch.testing.assert_close(got, expected)


def test_unbatched_chunks_give_unbatched_audio() -> None:
    generator = small_generator("hop300", "subpixel")
    mel = torch.randn(NUM_MELS, 9, generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        got = stream_through(StreamingGenerator(generator), mel[None], [4, 5])[0]
        streamer = StreamingGenerator(generator)
        parts = [streamer.step(mel[:, :4]), streamer.step(mel[:, 4:]), streamer.flush()]
        assert all(part.dim() == 2 for part in parts)
        torch.testing.assert_close(torch.cat(parts, dim=-1), generator(mel))
        torch.testing.assert_close(got, generator(mel))
        with pytest.raises(ValueError, match="batched or unbatched"):
            streamer.reset()
            streamer.step(mel[:, :4])
            streamer.step(mel[None, :, 4:])


def test_module_session_api() -> None:
    """``with block.streaming(batch_size):`` / ``step`` / ``flush`` on any StreamingModule;
    ``flush`` closes the session until ``reset()`` (the life cycle of every session)."""
    block = make_layer("upsample_block").eval()
    x = torch.randn(BATCH, CHANNELS, 11, generator=torch.Generator().manual_seed(8))
    with torch.no_grad():
        with block.streaming(batch_size=BATCH):
            with pytest.raises(ValueError, match="batch size 1 differs"):
                block.step(x[:1])
            got = torch.cat([block.step(x[:, :, :5]), block.step(x[:, :, 5:]), block.flush()], -1)
            with pytest.raises(StreamClosedError, match="reset"):
                block.step(x)
            block.stream_session.reset()
            again = torch.cat([block.step(x[:, :, :3]), block.step(x[:, :, 3:]), block.flush()], -1)
        with block.streaming():
            unbatched = torch.cat([block.step(x[0]), block.flush()], -1)
        torch.testing.assert_close(got, block(x))
        torch.testing.assert_close(again, block(x))
        torch.testing.assert_close(unbatched, block(x[:1])[0])
    with pytest.raises(RuntimeError, match="outside `with module.streaming"):
        block.step(x)


def test_a_module_without_a_rule_is_named() -> None:
    with pytest.raises(TypeError, match="^LSTM has no streaming rule"):
        new_stream(nn.Sequential(nn.Conv1d(2, 2, 3), nn.LSTM(2, 2)))
    assert math.isclose(float(stream_context(nn.Sequential(nn.ReLU(), nn.Tanh())).left), 0)
