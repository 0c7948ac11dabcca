"""The aliasing measure on hand-worked cases, and the anti-aliasing filters' direction."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from upsampler import BigVGANGenerator, HiFiGANGenerator
from upsampler.analysis.aliasing import (
    aliasing_sweep,
    mean_aliasing_db,
    nearest_odd_bin,
    tone_aliasing,
    wanted_bins,
)
from upsampler.analysis.aliasing_compare import (
    compare_aliasing,
    format_aliasing_table,
    generator_stage_aliasing,
)
from upsampler.analysis.aliasing_plots import plot_aliasing_spectrum, plot_aliasing_sweeps
from upsampler.layers import Activation1d, Snake, UpSample1d

CHANNELS = 2
NUMERICAL_FLOOR_DB = -100.0  # float32 round-off alone stays far below this


class PlusSquare(nn.Module):
    """``x + x^2``: a sine of amplitude 1 gives DC 1/2, the tone and a 2nd harmonic of 1/2."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + x * x


def test_folded_second_harmonic_matches_hand_worked_ratio() -> None:
    # at 0.3 cycles/sample the 2nd harmonic (0.6) folds to 0.4: unwanted power (1/2 * 1/2)^2
    # against DC (1/2)^2 + tone (1/2)^2 (rfft amplitudes over N/2): 1/16 / 1/2 = 1/8
    report = tone_aliasing(PlusSquare(), 0.3, CHANNELS)
    assert report.aliasing_db == pytest.approx(10 * math.log10(1 / 8), abs=1e-3)
    # at 0.2 the harmonic (0.4) is below Nyquist: wanted, nothing else is left
    assert tone_aliasing(PlusSquare(), 0.2, CHANNELS).aliasing_db < NUMERICAL_FLOOR_DB


def test_linear_block_has_no_aliasing_and_odd_tone_bins() -> None:
    assert tone_aliasing(nn.Identity(), 0.45, CHANNELS).aliasing_db < NUMERICAL_FLOOR_DB
    assert nearest_odd_bin(0.25, 1024) == 257
    assert wanted_bins(3, 10).tolist() == [True, False, False, True, False, False, True,
                                           False, False, True]


def test_upsampler_images_count_as_unwanted() -> None:
    report = tone_aliasing(UpSample1d(CHANNELS), 0.45, CHANNELS, stride=2)
    assert report.power.shape == (1024 * 2 // 2 + 1,)
    # the Kaiser filter's transition band is wide: a tone near Nyquist leaves a strong image
    assert -40.0 < report.aliasing_db < 0.0


@pytest.mark.parametrize("frequency", [0.3, 0.35, 0.4])
def test_anti_aliasing_lowers_snake_aliasing(frequency: float) -> None:
    snake = Snake(CHANNELS)
    plain = tone_aliasing(Activation1d(snake, anti_alias=False), frequency, CHANNELS)
    filtered = tone_aliasing(Activation1d(snake), frequency, CHANNELS)
    assert plain.aliasing_db > NUMERICAL_FLOOR_DB
    assert filtered.aliasing_db < plain.aliasing_db - 3.0


@pytest.fixture
def one_thread():
    """One intra-op thread: on a loaded 2-core machine two threads spin-wait on each other
    through the many small ops of the stage variants."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_comparison_rows_and_plots(one_thread: None) -> None:
    rows, sweeps = compare_aliasing(frequencies=(0.3, 0.4))
    by_name = {row["variant"]: row for row in rows}
    assert by_name["amp1_aa"]["mean_db"] < by_name["amp1"]["mean_db"] - 3.0
    assert by_name["snake_aa"]["mean_db"] < by_name["snake"]["mean_db"]
    assert "hifigan_v1_stage_subpixel_icnr" in by_name
    assert format_aliasing_table(rows).count("\n") == len(rows) + 1
    fig = plot_aliasing_sweeps(sweeps)
    assert len(fig.axes[0].lines) == len(rows)
    assert fig.axes[0].get_ylabel() == "unwanted / wanted energy (dB)"
    spectrum = plot_aliasing_spectrum(sweeps["snake"][0])
    assert "aliasing" in spectrum.axes[0].get_title()


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="frequency must be in"):
        tone_aliasing(nn.Identity(), 0.6, CHANNELS)
    with pytest.raises(ValueError, match="stride=2: module output shape"):
        tone_aliasing(nn.Identity(), 0.3, CHANNELS, stride=2)


def tiny_bigvgan() -> nn.Module:
    torch.manual_seed(0)
    return BigVGANGenerator(num_mels=4, upsample_rates=(2, 2), upsample_kernel_sizes=(4, 4),
                            upsample_initial_channel=8, resblock_kernel_sizes=(3,),
                            resblock_dilation_sizes=((1, 3),)).eval()


def test_generator_stage_aliasing_measures_the_last_stage_with_and_without_filters() -> None:
    generator = tiny_bigvgan()
    found = generator_stage_aliasing(generator, frequencies=(0.1, 0.45))
    # stage 1 of 2: input channels 8 // 2 (halved per stage), stride 2
    assert (found["stage"], found["in_channels"], found["stride"]) == (1, 4, 2)
    # the stage's own weights, read directly: the same sweep on generator.stages[1]
    direct = aliasing_sweep(generator.stages[1], (0.1, 0.45), 4, 2)
    assert found["per_frequency_db"] == pytest.approx([r.aliasing_db for r in direct])
    assert found["mean_db"] == pytest.approx(mean_aliasing_db(direct))
    plain = found["without_anti_alias"]
    assert plain is not None and len(plain["per_frequency_db"]) == 2
    # the generator itself keeps its filters on
    assert all(m.anti_alias for m in generator.modules() if isinstance(m, Activation1d))
    generator.set_anti_alias(False)
    direct_plain = aliasing_sweep(generator.stages[1], (0.1, 0.45), 4, 2)
    assert plain["mean_db"] == pytest.approx(mean_aliasing_db(direct_plain))
    # at initialisation the images of the stage's transposed conv dominate both, so the two
    # differ little; approx's relative 1e-6 still tells them apart
    assert plain["mean_db"] != pytest.approx(found["mean_db"])


def test_generator_stage_aliasing_of_hifigan_and_bad_input() -> None:
    torch.manual_seed(0)
    hifigan = HiFiGANGenerator(num_mels=4, upsample_rates=(2, 2), upsample_kernel_sizes=(4, 4),
                               upsample_initial_channel=8, resblock_kernel_sizes=(3,),
                               resblock_dilation_sizes=((1, 3),)).eval()
    found = generator_stage_aliasing(hifigan, stage=0, frequencies=(0.3,))
    assert (found["stage"], found["in_channels"], found["stride"]) == (0, 8, 2)
    assert found["without_anti_alias"] is None  # no anti-aliasing filters to switch off
    with pytest.raises(ValueError, match="stage must index generator.stages .2 stages., got 2"):
        generator_stage_aliasing(hifigan, stage=2)
    with pytest.raises(TypeError, match="generator must have a non-empty .stages"):
        generator_stage_aliasing(nn.Identity())
