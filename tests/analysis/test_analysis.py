"""Artifact measures against hand-worked cases and torch's own transposed convolution."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from upsampler import HiFiGANGenerator
from upsampler.analysis import (
    averaged_power_spectrum,
    expected_tone_frequencies,
    layer_phase_gains,
    overlap_map,
    overlap_ratio,
    phase_gains,
    phase_imbalance,
    phase_overlap,
    stack_overlap_map,
    stack_response,
    tonal_artifacts,
    tone_excess_db,
    upsampler_strides,
)
from upsampler.analysis.spectrum import FLOOR_DB
from upsampler.layers import ConvTranspose1d, make_upsampler


@pytest.mark.parametrize(
    ("stride", "padding", "expected"),
    [(1, 0, [1, 2, 3, 3, 2, 1]), (1, 1, [2, 3, 3, 2]), (2, 1, [1, 2, 1, 2, 1, 2, 1])],
)
def test_overlap_map_seed_blog(stride: int, padding: int, expected: list[int]) -> None:
    assert overlap_map(3, stride, 4, padding=padding).tolist() == expected


def test_overlap_map_matches_torch_ones_kernel() -> None:
    out = F.conv_transpose1d(torch.ones(1, 1, 6, dtype=torch.float64),
                             torch.ones(1, 1, 5, dtype=torch.float64), stride=3, padding=1,
                             dilation=2, output_padding=1)
    assert overlap_map(5, 3, 6, padding=1, output_padding=1, dilation=2).tolist() == (
        out.flatten().long().tolist()
    )


def test_phase_overlap_hand_worked() -> None:
    assert phase_overlap(3, 2).tolist() == [2, 1]
    assert phase_overlap(16, 8).tolist() == [2] * 8
    assert phase_overlap(12, 8).tolist() == [2, 2, 2, 2, 1, 1, 1, 1]


def test_stack_overlap_k_equals_2s_is_even() -> None:
    # each (k=4, s=2) layer gives every sample 2 taps: 2 * 2 = 4 paths in the interior
    counts = stack_overlap_map((4, 4), (2, 2), 8)
    assert len(counts) == 32
    assert counts[8:-8].tolist() == [4] * 16
    assert overlap_ratio(counts, 4, edge=8) == 1.0


def test_stack_overlap_k3_s2_compounds() -> None:
    # layer 1 (exact padding 1): odd samples get 2 taps, even 1. Layer 2: even n takes one
    # tap from u[n/2], odd n two taps from u[(n-1)/2] + u[(n+1)/2] = 1 + 2: period [1, 3, 2, 3]
    counts = stack_overlap_map((3, 3), (2, 2), 8)
    assert counts[8:24].tolist() == [1, 3, 2, 3] * 4
    assert overlap_ratio(counts, 4, edge=8) == 3.0


def test_overlap_ratio_needs_whole_periods() -> None:
    with pytest.raises(ValueError, match="period"):
        overlap_ratio(np.ones(10), 4)


def test_phase_gains_hand_worked() -> None:
    gains = phase_gains(np.ones(3), 2)
    assert gains.tolist() == [[[2.0, 1.0]]]
    imbalance = phase_imbalance(gains)
    assert imbalance.max_min_ratio[0, 0] == 2.0
    assert imbalance.coefficient_of_variation[0, 0] == pytest.approx(1 / 3)
    equal = phase_gains(np.full(8, 0.25), 4)  # all-equal taps, k = 2s
    assert equal.tolist() == [[[0.5] * 4]]
    assert phase_imbalance(equal).median_cv == 0.0 and phase_imbalance(equal).median_ratio == 1.0


def test_phase_gains_dilation_can_starve_a_phase() -> None:
    gains = phase_gains(np.array([1.0, 2.0, 3.0]), 2, dilation=2)  # taps at 0, 2, 4
    assert gains.tolist() == [[[6.0, 0.0]]]
    assert phase_imbalance(gains).max_min_ratio[0, 0] == np.inf


def test_layer_phase_gains_predict_torch_constant_response() -> None:
    torch.manual_seed(0)
    layer = ConvTranspose1d(3, 2, 7, 4, padding=2, output_padding=1, bias=False).double()
    gains = layer_phase_gains(layer)  # (3, 2, 4)
    for channel in range(3):
        x = torch.zeros(1, 3, 12, dtype=torch.float64)
        x[:, channel] = 1.0
        out = F.conv_transpose1d(x, layer.weight, stride=4, padding=2, output_padding=1)
        interior = out[0, :, 8:40].reshape(2, 8, 4)  # (C_out, periods, phase)
        torch.testing.assert_close(interior, torch.from_numpy(gains[channel])[:, None, :]
                                   .expand(2, 8, 4))


def test_layer_phase_gains_rejects_a_plain_conv() -> None:
    with pytest.raises(ValueError, match="transposed"):
        layer_phase_gains(nn.Conv1d(1, 1, 3))


def test_stack_response_of_one_layer_is_its_kernel() -> None:
    torch.manual_seed(0)
    layer = make_upsampler("transposed", 3, 2, 4, 7)  # exact padding 2, output_padding 1
    response = stack_response(layer)
    weight = layer.weight.detach().double().numpy()
    start = response.lag_zero - 2  # tap k sits at lag k - padding
    np.testing.assert_allclose(response.impulse_response[..., start : start + 7], weight)
    np.testing.assert_allclose(response.phase_gains, layer_phase_gains(layer))


def test_stack_response_frequency_at_tones_is_dft_of_phase_gains() -> None:
    torch.manual_seed(1)
    stack = nn.Sequential(make_upsampler("transposed", 4, 3, 2, 3),
                          make_upsampler("transposed", 3, 2, 3, 5))
    response = stack_response(stack, sample_rate=6000.0)
    assert response.total_stride == 6
    spacing = 1000.0  # fs_out / S
    tone_bins = [int(np.argmin(np.abs(response.frequencies - m * spacing))) for m in range(4)]
    expected = np.fft.fft(response.phase_gains, axis=-1)[..., :4]
    np.testing.assert_allclose(response.frequency_response[..., tone_bins], expected, atol=1e-12)


@pytest.mark.parametrize("kind", ["nearest_conv", "linear_conv", "subpixel_icnr"])
def test_tone_free_kinds_have_no_periodic_component(kind: str) -> None:
    torch.manual_seed(0)
    stack = nn.Sequential(make_upsampler(kind, 3, 2, 4, 8), make_upsampler(kind, 2, 2, 2, 4))
    response = stack_response(stack)
    scale = np.abs(response.phase_gains).max()
    assert np.abs(response.periodic_component).max() < 1e-12 * scale


def test_stack_response_of_a_generator_uses_its_upsamplers() -> None:
    torch.manual_seed(0)
    generator = HiFiGANGenerator.from_preset("v1", upsample_initial_channel=16)
    response = stack_response(generator, max_input_channels=2)
    assert response.strides == (8, 8, 2, 2)
    assert response.phase_gains.shape == (2, 1, 256)


def test_expected_tone_frequencies_hand_worked() -> None:
    tones = expected_tone_frequencies((8, 8, 2, 2), 22050.0)
    assert len(tones) == 7 + 7 + 1 + 1
    assert tones[0].frequency == pytest.approx(22050 / 256)  # layer 0: m * 689.0625 / 8
    assert tones[7].frequency == pytest.approx(22050 / 32)  # layer 1: m * 5512.5 / 8
    assert [tone.frequency for tone in tones[-2:]] == [5512.5, 11025.0]
    assert [tone.frequency for tone in expected_tone_frequencies((4,), 16000.0)] == [
        4000.0, 8000.0, 4000.0  # m = 3: 12 kHz folds to 4 kHz
    ]


def test_tone_excess_hand_worked() -> None:
    spectrum = np.ones(129)
    spectrum[40] = 100.0  # a tone 20 dB over a flat floor; tones possible every 8 bins
    assert tone_excess_db(spectrum, [40, 48], 8).tolist() == pytest.approx([20.0, 0.0])
    assert tone_excess_db(np.zeros(129), [40], 8, reference=spectrum)[0] == FLOOR_DB


def test_averaged_power_spectrum_of_white_noise_and_a_sine() -> None:
    rng = np.random.default_rng(0)
    noise = averaged_power_spectrum(rng.standard_normal((4, 16384)), 256)
    assert noise.shape == (129,)
    assert noise[1:-1].mean() == pytest.approx(1.0, rel=0.05)  # variance 1; 5%: 500 segments
    sine = averaged_power_spectrum(np.sin(2 * np.pi * 32 * np.arange(4096) / 256), 256)
    assert int(np.argmax(sine)) == 32


def _stride2_layer(taps: list[float]) -> ConvTranspose1d:
    layer = ConvTranspose1d(1, 1, len(taps), 2, padding=len(taps) // 2 - 1 + len(taps) % 2,
                            output_padding=len(taps) % 2, bias=False)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor(taps).view(1, 1, -1))
    return layer


def test_tonal_artifacts_sees_uneven_phases_and_not_even_ones() -> None:
    uneven = tonal_artifacts(_stride2_layer([1.0, 1.0, 1.0]), sample_rate=16000.0)
    assert [tone.frequency for tone in uneven.tones] == [8000.0]
    assert uneven.summary_db > 20.0  # constant 2, 1, 2, 1 ...: a Nyquist line
    even = tonal_artifacts(_stride2_layer([1.0, 1.0, 1.0, 1.0]), sample_rate=16000.0)
    assert even.summary_db < -60.0  # constant in, constant out: only rounding at 8 kHz


def test_tonal_artifacts_on_a_small_generator() -> None:
    torch.manual_seed(0)
    generator = HiFiGANGenerator.from_preset("v1", upsample_initial_channel=16)
    report = tonal_artifacts(generator, num_frames=48, n_fft=2048, edge_frames=8)
    assert report.strides == (8, 8, 2, 2) and len(report.tones) == 16
    assert report.noise_spectrum.shape == (1025,) and np.isfinite(report.summary_db)


def test_upsampler_strides_of_each_module_kind() -> None:
    assert upsampler_strides(make_upsampler("subpixel", 2, 2, 5, 10)) == (5,)
    stack = nn.ModuleList([make_upsampler("nearest_conv", 2, 2, 3, 6),
                           nn.ConvTranspose1d(2, 2, 4, 2, 1)])
    assert upsampler_strides(stack) == (3, 2)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: tonal_artifacts(make_upsampler("transposed", 1, 1, 2, 4), strides=[0]), "stride"),
        (lambda: tonal_artifacts(make_upsampler("transposed", 1, 1, 2, 4), num_frames=0),
         "num_frames"),
        (lambda: tonal_artifacts(make_upsampler("transposed", 1, 1, 2, 4), num_frames=40),
         "num_frames"),
        (lambda: tonal_artifacts(make_upsampler("transposed", 1, 1, 2, 4), sample_rate=0.0),
         "sample_rate"),
        (lambda: tonal_artifacts(make_upsampler("transposed", 1, 1, 2, 4), sample_rate=-1.0),
         "sample_rate"),
        (lambda: tonal_artifacts(nn.Conv1d(1, 1, 3)), "upsampler"),
        (lambda: tonal_artifacts(nn.Conv1d(1, 1, 3, padding=1), strides=[2], in_channels=1),
         "not an upsampler"),
        (lambda: stack_response(nn.Linear(2, 2)), "upsampler"),
        (lambda: stack_response(make_upsampler("transposed", 1, 1, 2, 4), sample_rate=0),
         "sample_rate"),
        (lambda: averaged_power_spectrum(np.zeros(0), 16), "n_fft"),
        (lambda: expected_tone_frequencies((2, 0), 22050.0), "stride"),
        (lambda: overlap_map(3, 0, 4), "stride"),
        (lambda: phase_gains(np.ones(3), 0), "stride"),
    ],
)
def test_bad_input_raises_value_error(call, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()


def test_tonal_artifacts_dtype_runs_a_copy() -> None:
    torch.manual_seed(0)
    layer = make_upsampler("subpixel", 2, 2, 2, 4)
    report = tonal_artifacts(layer, sample_rate=8000.0, dtype=torch.float64)
    assert layer.weight.dtype == torch.float32  # the caller's module is untouched
    assert report.summary_db > 0.0  # plain subpixel: uneven phases give a Nyquist line
