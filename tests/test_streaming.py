"""Streaming equals offline: the chunked transposed conv and the chunked generator."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn

from upsampler import ConvTranspose1d
from upsampler.streaming import StreamClosedError, StreamingConvTranspose1d

IN_CHANNELS, OUT_CHANNELS, BATCH = 4, 6, 2
LENGTH = 70  # longer than the largest chunk (64) so every chunk size splits it
CHUNK_SIZES = [1, 2, 3, 7, 64]
# (kernel_size, stride, padding, output_padding, dilation, groups): odd strides, k not a
# multiple of s, k < s, dilation > 1, groups > 1, output_padding > 0, padding > k - s
LAYER_GRID = [
    (16, 8, 4, 0, 1, 1),  # HiFi-GAN V1 stage
    (4, 2, 1, 0, 1, 1),
    (7, 3, 2, 1, 1, 1),
    (5, 3, 3, 1, 2, 1),
    (3, 5, 0, 4, 1, 1),  # kernel shorter than stride, output_padding fills the gap
    (3, 4, 1, 0, 1, 1),  # padding larger than the overlap: samples must be held back
    (5, 4, 2, 0, 1, 1),
    (11, 4, 7, 2, 3, 2),
    (1, 1, 0, 0, 1, 1),
]


def stream(streamer: StreamingConvTranspose1d, x: Tensor, sizes: list[int]) -> Tensor:
    """Feed ``x`` in chunks of ``sizes`` (summing to its length), flush, concatenate."""
    outs, start = [], 0
    for size in sizes:
        outs.append(streamer.step(x[:, :, start : start + size]))
        start += size
    assert start == x.shape[-1]
    return torch.cat(outs + [streamer.flush()], dim=-1)


def fixed_sizes(length: int, chunk: int) -> list[int]:
    return [min(chunk, length - start) for start in range(0, length, chunk)]


def random_sizes(length: int, generator: torch.Generator) -> list[int]:
    """Random positive chunk sizes (some empty chunks too) summing to ``length``."""
    sizes, left = [], length
    while left:
        size = int(torch.randint(0, min(left, 9) + 1, (1,), generator=generator))
        sizes.append(size)
        left -= size
    return sizes


def make_layer(config: tuple[int, ...], cls: type = ConvTranspose1d) -> nn.Module:
    kernel_size, stride, padding, output_padding, dilation, groups = config
    return cls(IN_CHANNELS, OUT_CHANNELS, kernel_size, stride, padding, output_padding,
               groups=groups, dilation=dilation)


@pytest.mark.parametrize("config", LAYER_GRID)
@pytest.mark.parametrize("chunk", CHUNK_SIZES)
def test_layer_chunks_equal_one_shot(config: tuple[int, ...], chunk: int) -> None:
    torch.manual_seed(0)
    layer = make_layer(config)
    x = torch.randn(BATCH, IN_CHANNELS, LENGTH)
    with torch.no_grad():
        got = stream(StreamingConvTranspose1d(layer), x, fixed_sizes(LENGTH, chunk))
        torch.testing.assert_close(got, layer(x))


@pytest.mark.parametrize("config", LAYER_GRID)
def test_layer_random_splits_equal_torch(config: tuple[int, ...]) -> None:
    """Torch's own layer is the oracle; short inputs too (one sample, fewer than a kernel)."""
    torch.manual_seed(1)
    split_rng = torch.Generator().manual_seed(2)
    layer = make_layer(config, nn.ConvTranspose1d)
    streamer = StreamingConvTranspose1d(layer)
    with torch.no_grad():
        for length in (1, 2, 5, LENGTH):
            x = torch.randn(BATCH, IN_CHANNELS, length)
            streamer.reset()
            got = stream(streamer, x, random_sizes(length, split_rng))
            torch.testing.assert_close(got, layer(x))


def test_layer_float64_is_exact_to_rounding() -> None:
    torch.manual_seed(3)
    layer = make_layer((16, 8, 4, 0, 1, 1)).double()
    x = torch.randn(1, IN_CHANNELS, 33, dtype=torch.float64)
    with torch.no_grad():
        got = stream(StreamingConvTranspose1d(layer), x, [5, 1, 27])
        torch.testing.assert_close(got, layer(x), rtol=0, atol=1e-12)  # float64 rounding only


def test_layer_emits_each_sample_as_soon_as_final() -> None:
    """k=16, s=8, p=4 (hand-worked): after n inputs, positions < 8n are final, minus the
    4 cropped at the start: 8n - 4 samples; flush adds the last 4 (total 8n)."""
    layer = make_layer((16, 8, 4, 0, 1, 1))
    streamer = StreamingConvTranspose1d(layer)
    with torch.no_grad():
        sizes = [streamer.step(torch.randn(1, IN_CHANNELS, 1)).shape[-1] for _ in range(3)]
        assert sizes == [4, 8, 8]
        assert streamer.flush().shape[-1] == 4


def test_layer_bad_chunk_leaves_stream_usable() -> None:
    torch.manual_seed(4)
    layer = make_layer((7, 3, 2, 1, 1, 1))
    x = torch.randn(BATCH, IN_CHANNELS, 10)
    streamer = StreamingConvTranspose1d(layer)
    with torch.no_grad():
        first = streamer.step(x[:, :, :4])
        with pytest.raises(ValueError, match=f"\\(B, {IN_CHANNELS}, T\\)"):
            streamer.step(torch.randn(BATCH, IN_CHANNELS + 1, 3))
        with pytest.raises(ValueError, match="batch size 1"):
            streamer.step(torch.randn(1, IN_CHANNELS, 3))
        with pytest.raises(TypeError, match="float64"):
            streamer.step(x[:, :, 4:].double())
        rest = streamer.step(x[:, :, 4:])
        got = torch.cat([first, rest, streamer.flush()], dim=-1)
        torch.testing.assert_close(got, layer(x))


def test_layer_closed_after_flush_until_reset() -> None:
    torch.manual_seed(5)
    layer = make_layer((4, 2, 1, 0, 1, 1))
    streamer = StreamingConvTranspose1d(layer)
    x = torch.randn(1, IN_CHANNELS, 6)
    with torch.no_grad():
        streamer.step(x)
        streamer.flush()
        assert streamer.closed
        with pytest.raises(StreamClosedError, match="reset"):
            streamer.step(x)
        with pytest.raises(StreamClosedError, match="reset"):
            streamer.flush()
        streamer.reset()
        torch.testing.assert_close(stream(streamer, x, [6]), layer(x))


def test_layer_flush_without_input_and_wrong_layer_type() -> None:
    streamer = StreamingConvTranspose1d(make_layer((4, 2, 1, 0, 1, 1)))
    with pytest.raises(ValueError, match="0 samples"):
        streamer.flush()
    with pytest.raises(TypeError, match="Conv1d"):
        StreamingConvTranspose1d(nn.Conv1d(2, 2, 3))


def test_layer_streams_gradients_like_one_shot() -> None:
    """The state is ordinary tensors: gradients through a stream equal the one-shot ones."""
    torch.manual_seed(6)
    layer = make_layer((5, 3, 3, 1, 2, 1))
    x = torch.randn(1, IN_CHANNELS, 12, requires_grad=True)
    stream(StreamingConvTranspose1d(layer), x, [3, 4, 5]).square().sum().backward()
    streamed = x.grad.clone()
    x.grad = None
    layer(x).square().sum().backward()
    torch.testing.assert_close(streamed, x.grad)
