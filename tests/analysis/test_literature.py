"""The literature's qualitative findings, reproduced on HiFi-GAN V1's upsampling stack.

Odena et al. 2016, Pons et al. 2021, Aitken et al. 2017: at random
initialisation, transposed and plain subpixel upsamplers are tonal at multiples of
``fs_out / s`` on a constant input; nearest/linear resize-convolution and ICNR subpixel are
not; ``k`` not a multiple of ``s`` overlaps unevenly, ``k = 2s`` does not.

Strides (8, 8, 2, 2) at 22.05 kHz as V1, but channels reduced from (512, 256, 128, 64, 32)
to ``REDUCED_CHANNELS`` (32, 16, 8, 4, 2) so the file runs in seconds. Three seeds each.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from upsampler import HiFiGANGenerator
from upsampler.analysis import compare_upsamplers, format_table, phase_overlap, tonal_artifacts
from upsampler.analysis.compare import UNEVEN_KERNEL_SIZES, V1_KERNEL_SIZES, V1_STRIDES

TONAL_MARGIN_DB = 10.0  # tonal kinds measured 31-45 dB (3 seeds); require a clear excess
TONE_FREE_MAX_DB = -60.0  # tone-free kinds sit at the -150 dB floor; rounding stays far below
GENERATOR_CHANNELS = 32  # upsample_initial_channel for the whole-generator check (V1: 512)


@pytest.fixture(scope="module")
def rows() -> dict[str, dict]:
    return {row["name"]: row for row in compare_upsamplers(seeds=(0, 1, 2))}


@pytest.mark.parametrize("name", ["transposed k=2s", "transposed k=1.5s", "subpixel"])
def test_transposed_and_plain_subpixel_are_tonal_at_init(rows: dict, name: str) -> None:
    assert rows[name]["summary_db_min"] > TONAL_MARGIN_DB  # every seed
    assert rows[name]["phase_gain_cv"] > 0.1


@pytest.mark.parametrize("name", ["nearest+conv", "linear+conv", "subpixel+ICNR"])
def test_resize_conv_and_icnr_are_tone_free_at_init(rows: dict, name: str) -> None:
    assert rows[name]["summary_db_max"] < TONE_FREE_MAX_DB  # every seed
    assert rows[name]["phase_gain_cv"] < 1e-9  # equal phase gains up to float64 rounding


def test_overlap_uneven_only_when_k_is_not_a_multiple_of_s(rows: dict) -> None:
    assert rows["transposed k=2s"]["overlap_ratio"] == 1.0
    assert rows["transposed k=1.5s"]["overlap_ratio"] >= 2.0  # each layer alone is 2:1
    for stride, even, uneven in zip(V1_STRIDES, V1_KERNEL_SIZES, UNEVEN_KERNEL_SIZES):
        assert len(set(phase_overlap(even, stride).tolist())) == 1
        assert len(set(phase_overlap(uneven, stride).tolist())) == 2


def test_table_lists_every_variant(rows: dict) -> None:
    table = format_table(list(rows.values()))
    assert len(table.splitlines()) == len(rows) + 1
    assert all(name in table for name in rows)


@pytest.mark.parametrize(
    ("kind", "tonal"), [("transposed", True), ("subpixel", True), ("subpixel_icnr", False)]
)
def test_whole_generator_at_init(kind: str, tonal: bool) -> None:
    torch.manual_seed(0)
    generator = HiFiGANGenerator.from_preset(
        "v1", upsample_initial_channel=GENERATOR_CHANNELS, upsampler=kind
    )
    report = tonal_artifacts(generator, num_frames=64, n_fft=2048)
    assert np.isfinite(report.summary_db)
    if tonal:
        assert report.summary_db > TONAL_MARGIN_DB
    else:
        assert report.period_summary_db < TONE_FREE_MAX_DB
