"""BigVGANGenerator and load_bigvgan against NVIDIA's BigVGAN (tests/upstream.py), on the
published configs (tests/bigvgan_reference.py), and BigVGAN's published facts: parameter
counts, checkpoint key names and counts, exact lengths."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from torch import Tensor, nn

import bigvgan_reference as ref
import hifigan_reference
import upstream
from upsampler import BigVGANGenerator, load_bigvgan
from upsampler.models import bigvgan_state_dict
from upsampler.models.bigvgan import PRESETS

FRAMES = 5
GAIN_SPREAD = (0.5, 1.5)  # gains drawn apart from ||v|| so swapped or ignored g/v would show
POST_GAIN = 30.0  # lifts the random network's output so tanh / clamp are exercised
# reduced widths (full width: 512 and 1536 channels) keep the parity tests fast
SMALL = {
    "base_22k": {**ref.CONFIGS["base_22k"], "upsample_initial_channel": 32},
    "v2_24k_256x": {**ref.CONFIGS["v2_24k_256x"], "upsample_initial_channel": 64},
}
# published: parameters with weight norm / folded, checkpoint keys / filter buffers among them
PUBLISHED = {
    "base_22k": (13_953_474, 13_943_361, 526, 146),
    "v2_24k_256x": (112_446_289, 112_414_512, 783, 218),
}


@pytest.fixture(autouse=True)
def one_thread():
    """One intra-op thread: on a loaded 2-core machine two threads spin-wait on each other
    through the hundreds of small ops of these models (10 s instead of 0.2 s per forward)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def original_generator(name: str, seed: int = 0) -> nn.Module:
    """NVIDIA's BigVGAN with random weights, Snake parameters and gains apart from ``||v||``."""
    torch.manual_seed(seed)
    generator = upstream.bigvgan_generator(SMALL[name])
    with torch.no_grad():
        for key, tensor in generator.state_dict().items():
            if key.endswith("weight_g"):
                tensor.mul_(torch.empty_like(tensor).uniform_(*GAIN_SPREAD))
            elif key.endswith(("alpha", "beta")):
                tensor.normal_(0.0, 0.5)
            elif key.endswith("bias"):
                tensor.normal_(0.0, 0.1)
        generator.conv_post.weight_g.mul_(POST_GAIN)
    return generator.eval()


def save(path: Path, state_dict: dict[str, Tensor]) -> Path:
    torch.save({"generator": state_dict}, path)
    return path


@pytest.mark.parametrize("name", ["base_22k", "v2_24k_256x"])
def test_parity_with_the_reference(tmp_path: Path, name: str) -> None:
    original = original_generator(name)
    path = save(tmp_path / "bigvgan_generator.pt", original.state_dict())
    generator = load_bigvgan(path, SMALL[name])
    mel = torch.randn(2, SMALL[name]["num_mels"], FRAMES)
    with torch.no_grad():
        expected = original(mel)
        assert expected.shape == (2, 1, FRAMES * 256)
        assert 0.05 < expected.abs().max() and expected.std() > 0.01  # not a flat output
        torch.testing.assert_close(generator(mel), expected)
        generator.set_polyphase(False)
        torch.testing.assert_close(generator(mel), expected)
        upstream.remove_weight_norm(original)
        generator.remove_weight_norm()
        generator.set_polyphase(True)
        torch.testing.assert_close(generator(mel), original(mel))
        # and back: our weights in BigVGAN's layout load strictly into the original
        original.load_state_dict(bigvgan_state_dict(generator), strict=True)
        torch.testing.assert_close(original(mel), expected)


@pytest.mark.parametrize("name", ["base_22k", "v2_24k_256x"])
def test_published_parameter_and_key_counts(name: str) -> None:
    with_norm, folded, keys, filters = PUBLISHED[name]
    with torch.device("meta"):  # full width, no memory
        ours = BigVGANGenerator.from_preset(name)
        theirs = upstream.bigvgan_generator(ref.CONFIGS[name])
    assert sum(p.numel() for p in ours.parameters()) == with_norm
    state_dict = theirs.state_dict()
    assert len(state_dict) == keys
    assert sum(key.endswith(".filter") for key in state_dict) == filters
    ours_flat = bigvgan_state_dict(ours)  # BigVGAN's names and shapes, weight_g / weight_v
    assert {k: v.shape for k, v in ours_flat.items()} == {k: v.shape for k, v in state_dict.items()}
    assert "resblocks.0.activations.5.downsample.lowpass.filter" in ours_flat
    assert state_dict["ups.3.0.weight_g"].shape[1:] == (1, 1)
    ours.remove_weight_norm()
    assert sum(p.numel() for p in ours.parameters()) == folded


@pytest.mark.parametrize("hop", [256, 300, 512])
@pytest.mark.parametrize("frames", [1, 2, 37])
def test_output_is_exactly_frames_times_hop(hop: int, frames: int) -> None:
    rates = {256: (8, 8, 2, 2), 300: (5, 5, 4, 3), 512: (8, 8, 4, 2)}[hop]
    assert math.prod(rates) == hop
    torch.manual_seed(0)
    generator = BigVGANGenerator(
        num_mels=80, upsample_rates=rates, upsample_kernel_sizes=[2 * u for u in rates],
        upsample_initial_channel=16, resblock="2", resblock_kernel_sizes=[3],
        resblock_dilation_sizes=[[1]], activation="snake",
    ).eval()
    with torch.no_grad():
        assert generator(torch.randn(1, 80, frames)).shape == (1, 1, frames * hop)


def test_v2_preset_layout() -> None:
    with torch.device("meta"):
        generator = BigVGANGenerator.from_preset("v2_24k_256x")
    assert generator.hop_length == 256 and generator.num_mels == 100
    assert generator.conv_post.bias is None and not generator.use_tanh_at_final
    assert set(PRESETS) == {"base_22k", "base_24k", "v2_24k_256x"}


def test_config_json_and_preset_detection(tmp_path: Path) -> None:
    original = original_generator("base_22k")
    path = save(tmp_path / "g.pt", original.state_dict())
    config = {**SMALL["base_22k"], "sampling_rate": 22050, "hop_size": 256, "batch_size": 4}
    (tmp_path / "config.json").write_text(json.dumps(config))
    generator = load_bigvgan(path, tmp_path / "config.json")
    assert generator.upsample_initial_channel == 32 and generator.activation == "snakebeta"
    with pytest.raises(ValueError, match="closest preset shown; pass config="):
        load_bigvgan(path)


def test_every_key_problem_in_one_error(tmp_path: Path) -> None:
    state_dict = original_generator("base_22k").state_dict()
    del state_dict["resblocks.2.activations.1.upsample.filter"]
    state_dict["conv_post.extra"] = torch.zeros(1)
    path = save(tmp_path / "g.pt", state_dict)
    config = {**SMALL["base_22k"], "upsample_initial_channel": 64}
    with pytest.raises(ValueError) as info:
        load_bigvgan(path, config)
    message = str(info.value)
    assert "missing key: resblocks.2.activations.1.upsample.filter" in message
    assert "unexpected key: conv_post.extra" in message
    assert "shape mismatch: conv_pre.weight_v: checkpoint (32, 80, 7) vs model (64, 80, 7)" in message


def test_hifigan_checkpoint_is_a_one_line_error(tmp_path: Path) -> None:
    torch.manual_seed(0)
    hifigan = upstream.hifigan_generator({**hifigan_reference.CONFIGS["v2"],
                                          "upsample_initial_channel": 32})
    path = save(tmp_path / "g_00000000", hifigan.state_dict())
    with pytest.raises(ValueError) as info:
        load_bigvgan(path, "base_22k")
    message = str(info.value)
    assert "\n" not in message
    assert "is a HiFi-GAN generator" in message and "load_hifigan" in message


def test_bad_configuration_names_the_field() -> None:
    with pytest.raises(ValueError, match="activation must be one of .*'relu'"):
        BigVGANGenerator(activation="relu")
    with pytest.raises(ValueError, match="upsample_rates and upsample_kernel_sizes must have"):
        BigVGANGenerator(upsample_rates=(8, 8, 2, 2), upsample_kernel_sizes=(16, 16, 4))
    with pytest.raises(ValueError, match="resblock must be one of"):
        BigVGANGenerator(resblock="3", upsample_initial_channel=64)
    with pytest.raises(ValueError, match="preset must be one of"):
        BigVGANGenerator.from_preset("v9")


def test_generator_streams_like_its_forward() -> None:
    torch.manual_seed(0)
    generator = BigVGANGenerator(upsample_initial_channel=16, resblock_kernel_sizes=[3, 5],
                                 resblock_dilation_sizes=[[1, 3], [1]]).eval()
    generator.remove_weight_norm()
    mel = torch.randn(1, 80, 9)
    outputs = []
    with torch.no_grad(), generator.streaming(batch_size=1):
        for start in range(0, 9, 2):
            outputs.append(generator.step(mel[..., start : start + 2]))
        outputs.append(generator.flush())
        expected = generator(mel)
    streamed = torch.cat(outputs, dim=-1)
    assert streamed.shape == (1, 1, 9 * 256)
    torch.testing.assert_close(streamed, expected)
