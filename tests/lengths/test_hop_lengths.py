"""Any hop: a generator planned for hop H turns T mel frames into exactly T * H samples."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from upsampler import HiFiGANGenerator
from upsampler.layers import UPSAMPLERS

# (hop, max_rate): hops of common TTS front ends; 275 = 11 * 5 * 5 needs rate 11
HOPS = [(200, 8), (240, 8), (275, 11), (300, 8), (320, 8), (441, 8), (512, 8)]
MEL_LENGTHS = [1, 2, 37, 800]
# small channels and one short resblock branch: 800 frames at hop 512 stay fast
SMALL = dict(upsample_initial_channel=16, resblock="2", resblock_kernel_sizes=(3,),
             resblock_dilation_sizes=((1,),))


@pytest.fixture(scope="module", params=HOPS, ids=[f"hop{h}" for h, _ in HOPS])
def planned(request: pytest.FixtureRequest) -> tuple[int, HiFiGANGenerator]:
    """The requested hop and a generator planned for it."""
    hop, max_rate = request.param
    torch.manual_seed(0)
    model = HiFiGANGenerator.from_hop_length(hop, max_rate, **SMALL)
    model.remove_weight_norm()
    return hop, model.eval()


@pytest.mark.parametrize("frames", MEL_LENGTHS)
def test_output_is_exactly_frames_times_hop(
    planned: tuple[int, HiFiGANGenerator], frames: int
) -> None:
    hop, generator = planned
    with torch.no_grad():
        out = generator(torch.randn(1, 80, frames))
    assert out.shape == (1, 1, frames * hop)


def test_plans_factorise_the_hop(planned: tuple[int, HiFiGANGenerator]) -> None:
    hop, generator = planned
    product = 1
    for rate, kernel in zip(generator.upsample_rates, generator.upsample_kernel_sizes):
        product *= rate
        assert kernel == 2 * rate
    assert product == hop == generator.hop_length


def test_prime_above_max_rate_is_rejected() -> None:
    with pytest.raises(ValueError, match="prime factor 11 > max_rate=8"):
        HiFiGANGenerator.from_hop_length(275, **SMALL)


def test_odd_kernel_minus_stride_is_exact_where_the_original_is_not() -> None:
    """u=5, k=10: the original's (k - u) // 2 padding returns one extra sample per stage."""
    frames, rate, kernel = 7, 5, 10
    original = nn.ConvTranspose1d(4, 4, kernel, rate, padding=(kernel - rate) // 2)
    assert original(torch.randn(1, 4, frames)).shape[-1] == frames * rate + 1
    generator = HiFiGANGenerator(
        upsample_rates=(rate, rate), upsample_kernel_sizes=(kernel, kernel), **SMALL
    )
    with torch.no_grad():
        assert generator(torch.randn(1, 80, frames)).shape == (1, 1, frames * rate * rate)


@pytest.mark.parametrize("kind", sorted(UPSAMPLERS))
def test_every_upsampler_kind_keeps_the_length(kind: str) -> None:
    torch.manual_seed(0)
    generator = HiFiGANGenerator.from_hop_length(300, upsampler=kind, **SMALL)
    assert generator.upsampler == kind
    with torch.no_grad():
        assert generator(torch.randn(2, 80, 5)).shape == (2, 1, 5 * 300)
