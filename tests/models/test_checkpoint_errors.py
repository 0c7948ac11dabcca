"""Damaged and mismatched checkpoints: refused at load with a readable, bounded message."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from upsampler import HiFiGANGenerator, load_hifigan
from upsampler.models import PRESETS, hifigan_state_dict

SMALL_V3 = {**PRESETS["v3"], "upsample_initial_channel": 16}


def saved(path: Path, generator: torch.nn.Module) -> Path:
    torch.save({"generator": hifigan_state_dict(generator)}, path)  # the original's layout
    return path


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_weights_are_refused_naming_the_first_bad_tensor(
    tmp_path: Path, bad: float
) -> None:
    torch.manual_seed(0)
    generator = HiFiGANGenerator(**SMALL_V3)
    state = hifigan_state_dict(generator)
    first_bad = "ups.1.bias"
    state[first_bad][3] = bad
    state["conv_post.bias"][0] = bad  # a later one: only the first is named
    torch.save({"generator": state}, tmp_path / "g_bad")
    with pytest.raises(ValueError, match=r"'ups\.1\.bias' \(4,\) has 1 NaN or Inf") as info:
        load_hifigan(tmp_path / "g_bad", config=SMALL_V3)
    assert "conv_post" not in str(info.value)


def test_mismatch_lists_a_count_and_the_first_dozen_one_per_line(tmp_path: Path) -> None:
    path = saved(tmp_path / "g_v3", HiFiGANGenerator.from_preset("v3"))
    with pytest.raises(ValueError) as info:
        load_hifigan(path, "v1")
    message = str(info.value)
    count = int(re.search(r"(\d+) problem\(s\)", message).group(1))
    problem_lines = [line for line in message.splitlines()
                     if line.startswith("  ") and not line.startswith("  ...")]
    assert count > 12 and len(problem_lines) == 12
    assert f"  ... and {count - 12} more" in message.splitlines()


def test_mismatch_hints_at_the_preset_whose_shapes_fit(tmp_path: Path) -> None:
    path = saved(tmp_path / "g_v3", HiFiGANGenerator.from_preset("v3"))
    with pytest.raises(ValueError) as info:
        load_hifigan(path, "v1")
    assert "hint: the checkpoint fits preset 'v3'" in str(info.value).splitlines()[-1]


def test_no_hint_when_no_preset_fits(tmp_path: Path) -> None:
    path = saved(tmp_path / "g_small", HiFiGANGenerator(**SMALL_V3))
    with pytest.raises(ValueError) as info:
        load_hifigan(path, "v1")
    assert not any(line.startswith("hint:") for line in str(info.value).splitlines())
