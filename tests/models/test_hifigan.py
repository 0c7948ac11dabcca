"""HiFiGANGenerator: presets and published sizes, the forward contract, bad mels."""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch

from upsampler import HiFiGANGenerator
from upsampler.layers import ConvTranspose1d
from upsampler.models import hifigan_state_dict

# The published generators: parameters with weight norm folded, state_dict keys of the files
PUBLISHED_PARAMETERS = {"v1": 13_926_017, "v2": 925_985, "v3": 1_462_273}
PUBLISHED_KEYS = {"v1": 234, "v2": 234, "v3": 69}
FRAMES = 8


def tiny(**overrides: Any) -> HiFiGANGenerator:
    """Four stages, hop 256, small channels: fast forward passes."""
    kwargs = dict(upsample_initial_channel=16, resblock_kernel_sizes=(3,),
                  resblock_dilation_sizes=((1, 3, 5),))
    return HiFiGANGenerator(**{**kwargs, **overrides})


@pytest.mark.parametrize("name", ["v1", "v2", "v3"])
def test_preset_sizes_match_published(name: str) -> None:
    generator = HiFiGANGenerator.from_preset(name)
    assert len(generator.state_dict()) == PUBLISHED_KEYS[name]
    assert generator.hop_length == 256
    generator.remove_weight_norm()
    assert sum(p.numel() for p in generator.parameters()) == PUBLISHED_PARAMETERS[name]


@pytest.mark.parametrize("resblock", ["1", "2"])
def test_forward_length_and_weight_norm_removal(resblock: str) -> None:
    torch.manual_seed(0)
    generator = tiny(resblock=resblock, resblock_dilation_sizes=((1, 3),))
    mel = torch.randn(2, 80, FRAMES)
    with torch.no_grad():
        before = generator(mel)
    generator.remove_weight_norm()
    assert "ups.0.weight" in hifigan_state_dict(generator)
    with torch.no_grad():
        after = generator(mel)
    assert before.shape == (2, 1, FRAMES * 256)
    torch.testing.assert_close(after, before)


def test_attributes_for_streaming_and_recipes() -> None:
    generator = HiFiGANGenerator.from_preset("v3", upsample_initial_channel=32)
    assert generator.upsample_rates == (8, 8, 4)
    assert generator.resblock_dilation_sizes == ((1, 2), (2, 6), (3, 12))
    assert (generator.num_upsamples, generator.num_kernels, generator.num_mels) == (3, 3, 80)
    assert generator.hop_length == 256
    assert len(generator.ups) == 3 and len(generator.stages) == 3
    assert all(len(stage.mrf.resblocks) == 3 for stage in generator.stages)
    assert isinstance(generator.ups[0], ConvTranspose1d)
    assert generator.ups[1] is generator.stages[1].upsample
    # stage 1 branch 2 has the third kernel size
    assert generator.stages[1].mrf.resblocks[2].kernel_size == 7
    assert generator.conv_pre.kernel_size == (7,) and generator.conv_post.out_channels == 1


def test_official_padding_is_kept() -> None:
    generator = HiFiGANGenerator.from_preset("v1", upsample_initial_channel=16)
    for up, rate, kernel in zip(generator.ups, (8, 8, 2, 2), (16, 16, 4, 4)):
        assert up.padding == ((kernel - rate) // 2,)
        assert up.output_padding == (0,)


def test_batch_items_are_independent() -> None:
    torch.manual_seed(0)
    generator = tiny()
    mel = torch.randn(3, 80, FRAMES)
    with torch.no_grad():
        together = generator(mel)
        alone = generator(mel[1:2])
    torch.testing.assert_close(together[1:2], alone)
    assert together.abs().max() <= 1.0


def test_gradients_reach_every_parameter() -> None:
    torch.manual_seed(0)
    generator = tiny()
    generator(torch.randn(1, 80, 3)).square().sum().backward()
    assert all(p.grad is not None and bool(p.grad.abs().sum() > 0) for p in generator.parameters())


def test_trace_matches_eager() -> None:
    torch.manual_seed(0)
    generator = tiny()
    generator.remove_weight_norm()
    mel = torch.randn(1, 80, 5)
    traced = torch.jit.trace(generator, mel, check_trace=False)
    other = torch.randn(2, 80, 7)
    torch.testing.assert_close(traced(other), generator(other))


def test_unbatched_mel_gives_unbatched_audio() -> None:
    torch.manual_seed(0)
    generator = tiny()
    mel = torch.randn(80, FRAMES)
    with torch.no_grad():
        torch.testing.assert_close(generator(mel), generator(mel[None])[0])
    assert generator(mel).shape == (1, FRAMES * 256)


def test_from_preset_overrides_and_unknown_name() -> None:
    assert HiFiGANGenerator.from_preset("V2", num_mels=100).num_mels == 100
    with pytest.raises(ValueError, match=r"preset must be one of \['v1', 'v2', 'v3'\], got 'v4'"):
        HiFiGANGenerator.from_preset("v4")


@pytest.mark.parametrize(
    ("mel", "error", "match"),
    [
        (torch.randn(1, 79, FRAMES), ValueError, "num_mels=80 channels, got 79"),
        (torch.randn(80 * FRAMES), ValueError,
         r"shape \(B, num_mels=80, T\) or \(num_mels, T\), got 1-D"),
        (torch.randn(1, 1, 80, FRAMES), ValueError, "got 4-D"),
        (torch.zeros(1, 80, 0), ValueError, "at least one frame"),
        (torch.full((1, 80, FRAMES), math.nan), ValueError, "NaN or Inf"),
        (torch.tensor([math.inf]).expand(1, 80, FRAMES), ValueError, "NaN or Inf"),
        (torch.zeros(1, 80, FRAMES, dtype=torch.long), TypeError, "floating-point"),
    ],
)
def test_bad_mel_is_rejected(mel: torch.Tensor, error: type, match: str) -> None:
    generator = tiny()
    with pytest.raises(error, match=match):
        generator(mel)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"upsample_rates": (8, 8), "upsample_kernel_sizes": (16,)}, "same length"),
        ({"upsample_rates": (8, 0, 2, 2)}, r"upsample_rates\[1\] must be >= 1"),
        ({"upsample_initial_channel": 8}, "must be >= 16"),
        ({"resblock_kernel_sizes": (3, 7)}, "one dilation list per kernel"),
        ({"num_mels": 0}, "num_mels must be >= 1"),
    ],
)
def test_bad_configuration_is_rejected(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        tiny(**kwargs)
