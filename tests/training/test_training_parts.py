"""Discriminator shapes and layer structure; checkpoint files, key layout, atomic writes, pruning."""

from __future__ import annotations

import errno
from pathlib import Path
from typing import BinaryIO

import pytest
import torch
from torch.nn.utils import parametrize

from training_support import tiny_trainer
from upsampler import load_hifigan
from upsampler._atomic import WriteError
from upsampler.training import checkpoints
from upsampler.training.discriminators import (
    FULL_PERIOD_CHANNELS,
    FULL_SCALE_CHANNELS,
    MultiPeriodDiscriminator,
    MultiScaleDiscriminator,
    PeriodDiscriminator,
    ScaleDiscriminator,
)


def test_period_discriminator_folds_and_strides_by_hand() -> None:
    disc = PeriodDiscriminator(3, channels=[2, 2, 2, 2, 2])
    score, features = disc(torch.randn(2, 1, 1000))
    # 1000 samples, reflect-padded to 1002 = 334 rows of 3; kernel 5, padding 2, stride 3:
    # 334 -> 112 -> 38 -> 13 -> 5, then stride 1 and the projection keep 5 rows
    assert [f.shape[2] for f in features] == [112, 38, 13, 5, 5, 5]
    assert all(f.shape[3] == 3 for f in features) and score.shape == (2, 5 * 3)


def test_full_width_layers_are_hifigans() -> None:
    period = PeriodDiscriminator(2, FULL_PERIOD_CHANNELS)
    shapes = [tuple(conv.weight.shape) for conv in period.convs] + [tuple(period.conv_post.weight.shape)]
    assert shapes == [(32, 1, 5, 1), (128, 32, 5, 1), (512, 128, 5, 1), (1024, 512, 5, 1),
                      (1024, 1024, 5, 1), (1, 1024, 3, 1)]
    scale = ScaleDiscriminator(FULL_SCALE_CHANNELS)
    layout = [(c.in_channels, c.out_channels, c.kernel_size[0], c.stride[0], c.groups)
              for c in scale.convs]
    assert layout == [(1, 128, 15, 1, 1), (128, 128, 41, 2, 4), (128, 256, 41, 2, 16),
                      (256, 512, 41, 4, 16), (512, 1024, 41, 4, 16), (1024, 1024, 41, 1, 16),
                      (1024, 1024, 5, 1, 1)]


def test_multi_discriminators_return_scores_and_feature_maps() -> None:
    wav = torch.randn(2, 1, 1200)
    mpd = MultiPeriodDiscriminator(channels=[2, 2, 2, 2, 2])
    scores, features = mpd(wav)
    assert len(scores) == 5 and [len(f) for f in features] == [6] * 5
    assert [f[0].shape[-1] for f in features] == [2, 3, 5, 7, 11]
    msd = MultiScaleDiscriminator([4] * 7, groups=[1, 4, 4, 4, 4, 4, 1])
    scores, features = msd(wav)
    assert len(scores) == 3 and [len(f) for f in features] == [8] * 3
    # AvgPool1d(4, 2, padding=2): 1200 -> 601 -> 301 samples; the first conv keeps the length
    assert [f[0].shape[-1] for f in features] == [1200, 601, 301]
    norms = [type(d.convs[0].parametrizations.weight[0]).__name__ for d in msd.discriminators]
    assert norms == ["_SpectralNorm", "_WeightNorm", "_WeightNorm"]


@pytest.mark.parametrize("build", [
    lambda: PeriodDiscriminator(2, channels=[8, 8]),
    lambda: PeriodDiscriminator(0),
    lambda: MultiPeriodDiscriminator([]),
    lambda: ScaleDiscriminator([6] * 7),  # 6 channels are not a multiple of 4 groups
    lambda: MultiScaleDiscriminator(num_scales=0),
])
def test_bad_discriminator_arguments(build) -> None:
    with pytest.raises(ValueError):
        build()


def test_discriminator_input_must_be_b_1_l() -> None:
    with pytest.raises(ValueError, match=r"\(B, 1, L\)"):
        MultiPeriodDiscriminator(channels=[2] * 5)(torch.randn(2, 1000))


def test_generator_state_dict_uses_original_weight_norm_keys(tmp_path: Path) -> None:
    generator = tiny_trainer().generator
    exported = checkpoints.generator_state_dict(generator)
    assert "conv_pre.weight_g" in exported and "conv_pre.weight_v" in exported
    assert not any("parametrizations" in key for key in exported)
    torch.save({"generator": exported}, tmp_path / "g_00000001")
    fields = {k: getattr(generator, k) for k in (
        "upsample_rates", "upsample_kernel_sizes", "upsample_initial_channel", "resblock",
        "resblock_kernel_sizes", "resblock_dilation_sizes")}
    loaded = load_hifigan(tmp_path / "g_00000001", config=fields)
    mel = torch.randn(1, 80, 3)
    torch.testing.assert_close(loaded(mel), generator.eval()(mel))


def test_other_architecture_is_a_one_line_error() -> None:
    state = checkpoints.generator_state_dict(tiny_trainer().generator)
    state.pop("conv_post.bias")
    with pytest.raises(ValueError, match="another generator architecture") as info:
        checkpoints.load_generator_state(tiny_trainer().generator, state, "g_00000001")
    assert "\n" not in str(info.value)


def test_pairs_complete_only_with_do_and_keep_last(tmp_path: Path) -> None:
    for step in (1, 2, 3):
        checkpoints.save_pair(tmp_path, step, {"w": torch.ones(1)}, {"steps": step}, keep_last=2)
    assert checkpoints.complete_steps(tmp_path) == [2, 3]
    (tmp_path / "g_00000004").write_bytes(b"")  # killed before its do_ was written
    (tmp_path / ".do_00000004.partial-1-x").write_bytes(b"half")  # killed inside torch.save
    assert checkpoints.latest_checkpoint(tmp_path) == 3
    checkpoints.save_pair(tmp_path, 5, {"w": torch.ones(1)}, {"steps": 5}, keep_last=2)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "do_00000003", "do_00000005", "g_00000003", "g_00000005"]


def test_failed_write_leaves_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_save = torch.save

    def full_disk_on_do(obj: dict, stream: BinaryIO) -> None:
        if "generator" in obj:  # g_ fits; do_ hits the full disk after some bytes
            return real_save(obj, stream)
        stream.write(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", full_disk_on_do)
    with pytest.raises(WriteError) as info:
        checkpoints.save_pair(tmp_path, 1, {"w": torch.ones(1)}, {"steps": 1}, keep_last=None)
    target = str(tmp_path / "do_00000001")
    assert str(info.value) == f"cannot write {target!r}: no space left on device"
    assert list(tmp_path.iterdir()) == []  # neither the temporary nor the lone g_


def test_unreadable_pair_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "g_00000001").write_bytes(b"not torch")
    (tmp_path / "do_00000001").write_bytes(b"not torch")
    with pytest.raises(ValueError, match="g_00000001' is not readable") as info:
        checkpoints.read_pair(tmp_path, 1)
    assert "\n" not in str(info.value)
