"""The family table behind both checkpoint loaders: each row's loader, probing and presets."""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Any

import pytest
import torch

import upsampler
from upsampler.models.family import BIGVGAN, FAMILIES, HIFIGAN, Family

# each family's layout at a width that builds in a moment; it fits none of the presets
SMALL = {
    HIFIGAN.name: {**HIFIGAN.presets["v3"], "upsample_initial_channel": 16},
    BIGVGAN.name: {**BIGVGAN.presets["base_22k"], "upsample_initial_channel": 16,
                   "resblock": "2", "resblock_kernel_sizes": (3,),
                   "resblock_dilation_sizes": ((1, 3),)},
}
BY_NAME = {family.name: family for family in FAMILIES}


def saved(tmp_path: Path, family: Family, **overrides: Any) -> Path:
    """A small generator of ``family`` in its release layout, as ``{"generator": ...}``."""
    torch.manual_seed(0)
    generator = family.generator(**{**SMALL[family.name], **overrides})
    path = tmp_path / f"{family.model_prefix}generator.pt"
    torch.save({"generator": family.release_state_dict(generator)}, path)
    return path


def loader(family: Family):
    """The public loader the table names (``upsampler.load_hifigan`` ...)."""
    return getattr(upsampler, family.loader)


@pytest.fixture
def builds(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[str]]:
    """Per family name, the device type each construction of its generator ran on."""
    devices: dict[str, list[str]] = {family.name: [] for family in FAMILIES}
    for family in FAMILIES:
        original = family.generator.__init__

        @functools.wraps(original)
        def spy(self, *args: Any, _name: str = family.name, _original=original, **kwargs: Any):
            devices[_name].append(torch.empty(0).device.type)  # the default device now
            _original(self, *args, **kwargs)

        monkeypatch.setattr(family.generator, "__init__", spy)
    return devices


@pytest.mark.parametrize("name", sorted(BY_NAME))
def test_each_family_loads_its_release_file_and_the_others_refuse_it(
        tmp_path: Path, name: str) -> None:
    family = BY_NAME[name]
    path = saved(tmp_path, family)
    loaded = loader(family)(path, config=SMALL[name])
    assert type(loaded) is family.generator and not loaded.training
    torch.manual_seed(0)
    built = family.generator(**SMALL[name])
    for key, tensor in built.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], tensor), key
    for other in FAMILIES:
        if other is family:
            continue
        with pytest.raises(ValueError) as info:
            loader(other)(path, config=SMALL[other.name])
        message = str(info.value)
        assert "\n" not in message and f"with {family.loader}" in message


@pytest.mark.parametrize("name", sorted(BY_NAME))
def test_only_the_fitting_candidate_is_built_off_the_meta_device(
        tmp_path: Path, name: str, builds: dict[str, list[str]]) -> None:
    family = BY_NAME[name]
    path = saved(tmp_path, family)
    builds[name].clear()
    loader(family)(path, config=SMALL[name])
    assert builds[name] == ["meta", "cpu"]  # the probe, then the model returned


@pytest.mark.parametrize("name", sorted(BY_NAME))
def test_no_preset_is_built_with_real_weights_to_find_a_fit(
        tmp_path: Path, name: str, builds: dict[str, list[str]]) -> None:
    # BigVGAN's v2 preset has 112 M parameters: probing it must not allocate them
    family = BY_NAME[name]
    path = saved(tmp_path, family)
    builds[name].clear()
    with pytest.raises(ValueError, match="closest preset shown"):
        loader(family)(path)
    assert builds[name] == ["meta"] * len(family.presets)
    builds[name].clear()
    largest = max(family.presets, key=lambda p: family.presets[p]["upsample_initial_channel"])
    with pytest.raises(ValueError, match="does not fit"):
        loader(family)(path, config=largest)
    assert builds[name] and set(builds[name]) == {"meta"}


@pytest.mark.parametrize("name", sorted(BY_NAME))
def test_mismatch_is_bounded_and_names_the_preset_that_fits(
        tmp_path: Path, name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    family = BY_NAME[name]
    monkeypatch.setattr(family.generator, "presets", {"tiny": SMALL[name]})
    path = saved(tmp_path, family)
    with pytest.raises(ValueError) as info:
        loader(family)(path, config={**SMALL[name], "upsample_initial_channel": 32})
    lines = str(info.value).splitlines()
    count = int(re.search(r"(\d+) problem\(s\)", lines[0]).group(1))
    assert count > 12 and f"  ... and {count - 12} more" in lines
    assert lines[-1].startswith("hint: the checkpoint fits preset 'tiny': pass config='tiny'")
