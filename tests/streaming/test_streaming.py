"""Streaming equals offline: the chunked transposed conv and the chunked generator."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import Tensor, nn

from upsampler import ConvTranspose1d
from upsampler.layers.upsample_block import TrimmedConvTranspose1d
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


@pytest.mark.parametrize("kernel_size", [2, 4])
@pytest.mark.parametrize("chunk", [1, 3])
def test_trimmed_layer_chunks_equal_one_shot(kernel_size: int, chunk: int) -> None:
    """An even kernel at stride 1 has no exact padding pair: the block trims (1, 0) or
    (2, 1) samples instead, and the stream must cut the same ones (T samples out)."""
    torch.manual_seed(4)
    layer = TrimmedConvTranspose1d(IN_CHANNELS, OUT_CHANNELS, 1, kernel_size)
    x = torch.randn(BATCH, IN_CHANNELS, 10)
    with torch.no_grad():
        got = stream(StreamingConvTranspose1d(layer), x, fixed_sizes(10, chunk))
        assert got.shape == (BATCH, OUT_CHANNELS, 10)
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


# ---- the generator ------------------------------------------------------------------------

from upsampler import HiFiGANGenerator  # noqa: E402
from upsampler.streaming import StreamingGenerator, generator_context  # noqa: E402

NUM_MELS = 80
MEL_FRAMES = 24  # > every model's look-ahead (V1 13, V3 11, hop 300 19 frames)
MODELS = {  # presets at small widths (the receptive field does not depend on channels)
    "v1": dict(preset="v1", upsample_initial_channel=16),
    "v3": dict(preset="v3", upsample_initial_channel=8),
    "hop300": dict(upsample_rates=[5, 5, 4, 3], upsample_kernel_sizes=[10, 10, 8, 6],
                   upsample_initial_channel=16),
}


def make_generator(name: str) -> HiFiGANGenerator:
    torch.manual_seed(0)
    kwargs = dict(MODELS[name])
    preset = kwargs.pop("preset", None)
    model = HiFiGANGenerator.from_preset(preset, **kwargs) if preset else HiFiGANGenerator(**kwargs)
    return model.eval()


@pytest.fixture(scope="module")
def generators() -> dict[str, HiFiGANGenerator]:
    """Weight norm folded (as for inference) except in v3, which streams it as it is."""
    models = {name: make_generator(name) for name in MODELS}
    for name in ("v1", "hop300"):
        models[name].remove_weight_norm()
    return models


def vocode_in_chunks(streamer: StreamingGenerator, mel: Tensor, sizes: list[int]) -> Tensor:
    return stream(streamer, mel, sizes)  # same protocol: step per chunk, flush, concatenate


@pytest.mark.parametrize("name", list(MODELS))
@pytest.mark.parametrize("chunk", CHUNK_SIZES)
def test_generator_chunks_equal_offline(
    generators: dict[str, HiFiGANGenerator], name: str, chunk: int
) -> None:
    generator = generators[name]
    mel = torch.randn(1, NUM_MELS, MEL_FRAMES, generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        got = vocode_in_chunks(StreamingGenerator(generator), mel, fixed_sizes(MEL_FRAMES, chunk))
        expected = generator(mel)
    assert got.shape == (1, 1, MEL_FRAMES * generator.hop_length)
    torch.testing.assert_close(got, expected)


@pytest.mark.parametrize("name", list(MODELS))
def test_generator_random_splits_equal_offline(
    generators: dict[str, HiFiGANGenerator], name: str
) -> None:
    generator = generators[name]
    rng = torch.Generator().manual_seed(8)
    mel = torch.randn(BATCH, NUM_MELS, MEL_FRAMES, generator=rng)
    streamer = StreamingGenerator(generator)
    with torch.no_grad():
        got = vocode_in_chunks(streamer, mel, random_sizes(MEL_FRAMES, rng))
        torch.testing.assert_close(got, generator(mel))


def test_v1_and_v3_latency_hand_worked(generators: dict[str, HiFiGANGenerator]) -> None:
    """Right reach, layer by layer (stride-1 conv: (k - 1) * d - p; ups: its padding p):
    V1: conv_pre 3 -> ups k16 u8 p4: 8*3 + 4 = 28 -> MRF k11 d(1,3,5) + three k11 d1 convs:
    5*(1+3+5) + 5*3 = 60 -> 88 -> 8*88 + 4 + 60 = 768 -> 2*768 + 1 + 60 = 1597
    -> 2*1597 + 1 + 60 = 3255 -> conv_post: 3258 samples; ceil(3258 / 256) = 13 frames.
    V3 (ResBlock2 k7 d(3,12): 3*3 + 3*12 = 45): 3 -> 28 + 45 = 73 -> 588 + 45 = 633
    -> 4*633 + 2 + 45 = 2579 -> 2582 samples; ceil(2582 / 256) = 11 frames.
    Left reach swaps p for k - 1 - p in each ups: V1 3513, V3 2837 samples."""
    v1, v3 = StreamingGenerator(generators["v1"]), StreamingGenerator(generators["v3"])
    assert (v1.left_context, v1.right_context, v1.look_ahead_frames) == (3513, 3258, 13)
    assert (v3.left_context, v3.right_context, v3.look_ahead_frames) == (2837, 2582, 11)
    assert v1.latency_ms == pytest.approx(13 * 256 / 22.05)
    assert StreamingGenerator(generators["v1"], sample_rate=16000).latency_ms == pytest.approx(208)


def test_v1_emits_exactly_the_final_samples(generators: dict[str, HiFiGANGenerator]) -> None:
    """After n frames V1 has emitted n * 256 - 3258 samples (none before frame 13)."""
    streamer = StreamingGenerator(generators["v1"])
    mel = torch.randn(1, NUM_MELS, 14)
    with torch.no_grad():
        assert streamer.step(mel[:, :, :12]).shape[-1] == 0
        assert streamer.step(mel[:, :, 12:13]).shape[-1] == 13 * 256 - 3258
        assert streamer.step(mel[:, :, 13:14]).shape[-1] == 256


@pytest.mark.parametrize("name", ["v1", "hop300"])
def test_receptive_field_is_tight(generators: dict[str, HiFiGANGenerator], name: str) -> None:
    """Sample j's gradient is non-zero exactly on frames ceil((j - left) / hop) ..
    floor((j + right) / hop): one frame less look-ahead would miss a frame it reads."""
    # float64: the edge taps' path products (about 0.01 per layer at HiFi-GAN's init)
    # underflow float32 long before they reach the outermost frames
    generator = copy.deepcopy(generators[name]).double()
    streamer = StreamingGenerator(generator)
    hop, left, right = generator.hop_length, streamer.left_context, streamer.right_context
    frames = (left + right) // hop + 4
    mel = torch.randn(1, NUM_MELS, frames, generator=torch.Generator().manual_seed(9),
                      dtype=torch.float64, requires_grad=True)
    audio = generator(mel)
    middle = frames // 2 * hop
    for j in (middle - 1, middle, middle + hop // 2):  # frame ends, starts and middles
        (grad,) = torch.autograd.grad(audio[0, 0, j], mel, retain_graph=True)
        read = grad[0].abs().sum(0).nonzero().flatten().tolist()
        first, last = -((left - j) // hop), (j + right) // hop
        assert read == list(range(first, last + 1))
    # the last sample of frame f reads frame f + look_ahead_frames
    f = middle // hop - 1
    assert last_read_frame(audio, mel, (f + 1) * hop - 1) == f + streamer.look_ahead_frames


def last_read_frame(audio: Tensor, mel: Tensor, sample: int) -> int:
    (grad,) = torch.autograd.grad(audio[0, 0, sample], mel, retain_graph=True)
    return int(grad[0].abs().sum(0).nonzero().max())


def test_generator_bad_chunks_leave_stream_usable(
    generators: dict[str, HiFiGANGenerator]
) -> None:
    generator = generators["v3"]
    mel = torch.randn(BATCH, NUM_MELS, MEL_FRAMES, generator=torch.Generator().manual_seed(10))
    streamer = StreamingGenerator(generator)
    with torch.no_grad():
        first = streamer.step(mel[:, :, :20])
        with pytest.raises(ValueError, match="num_mels=80"):
            streamer.step(mel[:, :40, 20:])
        with pytest.raises(ValueError, match="batch size 1"):
            streamer.step(mel[:1, :, 20:])
        with pytest.raises(ValueError, match="NaN"):
            streamer.step(torch.full((BATCH, NUM_MELS, 2), float("nan")))
        with pytest.raises(TypeError, match="float64"):
            streamer.step(mel[:, :, 20:].double())
        rest = streamer.step(mel[:, :, 20:])
        got = torch.cat([first, rest, streamer.flush()], dim=-1)
        torch.testing.assert_close(got, generator(mel))
        with pytest.raises(StreamClosedError, match="reset"):
            streamer.step(mel)
        streamer.reset()
        with pytest.raises(ValueError, match="0 frames"):
            streamer.flush()


def test_generator_with_a_trimmed_stage_equals_offline() -> None:
    """A stride-1 stage with an even kernel is a TrimmedConvTranspose1d: k=2 cuts 1 sample
    on the left, so that stage reads 1 sample ahead. Right reach: conv_pre 3 -> ups k16 u8
    p4 and MRF k3 d1 (1 + 1): 8*3 + 4 + 2 = 30 -> trimmed ups 30 + 1, MRF + 2 = 33
    -> conv_post: 36 samples."""
    torch.manual_seed(5)
    generator = HiFiGANGenerator(
        num_mels=4, upsample_rates=[8, 1], upsample_kernel_sizes=[16, 2],
        upsample_initial_channel=8, resblock_kernel_sizes=[3], resblock_dilation_sizes=[[1]],
    ).eval()
    assert generator_context(generator)[1] == 36
    mel = torch.randn(1, 4, 9, generator=torch.Generator().manual_seed(12))
    with torch.no_grad():
        streamer = StreamingGenerator(generator)
        got = vocode_in_chunks(streamer, mel, fixed_sizes(9, 2))
        assert got.shape == (1, 1, 9 * 8)
        torch.testing.assert_close(got, generator(mel))


def test_generator_without_a_streaming_rule_names_the_module() -> None:
    generator = HiFiGANGenerator(
        num_mels=4, upsample_rates=[2, 2], upsample_kernel_sizes=[4, 4],
        upsample_initial_channel=8, resblock_kernel_sizes=[3, 5],
        resblock_dilation_sizes=[[1], [1]],
    )
    generator.stages[1].mrf.resblocks[0] = nn.GRU(8, 8)
    with pytest.raises(TypeError, match="^GRU has no streaming rule"):
        generator_context(generator)
    with pytest.raises(TypeError, match="^GRU has no streaming rule"):
        StreamingGenerator(generator)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_streams_on_cuda(generators: dict[str, HiFiGANGenerator]) -> None:
    """State lives on the chunk's device: layer and generator stream on the GPU."""
    device = torch.device("cuda")
    layer = make_layer((7, 3, 2, 1, 1, 1)).to(device)
    x = torch.randn(BATCH, IN_CHANNELS, 20, device=device)
    generator = copy.deepcopy(generators["v3"]).to(device)
    mel = torch.randn(1, NUM_MELS, MEL_FRAMES, device=device)
    with torch.no_grad():
        torch.testing.assert_close(
            stream(StreamingConvTranspose1d(layer), x, fixed_sizes(20, 3)), layer(x))
        got = vocode_in_chunks(StreamingGenerator(generator), mel, fixed_sizes(MEL_FRAMES, 5))
        assert got.device.type == "cuda"
        torch.testing.assert_close(got, generator(mel))
