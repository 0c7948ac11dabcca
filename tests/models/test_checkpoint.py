"""load_hifigan against jik876's generator (upstream's, tests/upstream.py) saved as g_* files;
configs from tests/hifigan_reference.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import Tensor, nn

import hifigan_reference as ref
import upstream
from upsampler import HiFiGANGenerator, load_hifigan
from upsampler.models import hifigan_state_dict

FRAMES = 4
GAIN_SPREAD = (0.5, 1.5)  # gains drawn apart from ||v|| so swapped or ignored g/v would show
POST_GAIN = 100.0  # lifts the random network's output to ~0.1-1 so tanh's range is exercised
SMALL = {**ref.CONFIGS["v2"], "upsample_initial_channel": 32}  # V2's layout, fast


def original_generator(name: str, seed: int = 0) -> nn.Module:
    """Upstream's generator with random weights and gains that differ from ``||v||``."""
    torch.manual_seed(seed)
    generator = upstream.hifigan_generator(SMALL if name == "small" else ref.CONFIGS[name])
    with torch.no_grad():
        for key, tensor in generator.state_dict().items():
            if key.endswith("weight_g"):
                tensor.mul_(torch.empty_like(tensor).uniform_(*GAIN_SPREAD))
        generator.conv_post.weight_g.mul_(POST_GAIN)
    return generator.eval()


def save(path: Path, state_dict: dict[str, Tensor], wrap: bool = True) -> Path:
    torch.save({"generator": state_dict} if wrap else state_dict, path)
    return path


def parametrization_keys(state_dict: dict[str, Tensor]) -> dict[str, Tensor]:
    """The same tensors under torch.nn.utils.parametrizations.weight_norm's names."""
    renames = {"weight_g": "parametrizations.weight.original0",
               "weight_v": "parametrizations.weight.original1"}
    out = {}
    for key, tensor in state_dict.items():
        prefix, _, suffix = key.rpartition(".")
        out[f"{prefix}.{renames.get(suffix, suffix)}"] = tensor
    return out


@pytest.mark.parametrize("name", ["v1", "v2", "v3"])
def test_parity_with_original_checkpoint(tmp_path: Path, name: str) -> None:
    original = original_generator(name)
    path = save(tmp_path / "g_00000000", original.state_dict())
    generator = load_hifigan(path, name)
    assert not generator.training
    mel = torch.randn(2, 80, FRAMES)
    with torch.no_grad():
        expected = original(mel)
        torch.testing.assert_close(generator(mel), expected)
        assert expected.abs().max() > 0.05  # the comparison is not between near-zero outputs
        upstream.remove_weight_norm(original)
        generator.remove_weight_norm()
        torch.testing.assert_close(generator(mel), original(mel))


@pytest.mark.parametrize("form", ["parametrizations", "plain", "bare", "data_parallel"])
def test_every_key_form_loads_to_the_same_output(tmp_path: Path, form: str) -> None:
    original = original_generator("small")
    state_dict = original.state_dict()
    if form == "parametrizations":
        state_dict = parametrization_keys(state_dict)
    elif form == "data_parallel":
        state_dict = {f"module.{k}": v for k, v in state_dict.items()}
    mel = torch.randn(1, 80, FRAMES)
    with torch.no_grad():
        expected = original(mel)
        if form == "plain":
            upstream.remove_weight_norm(original)
            state_dict = original.state_dict()
            assert "ups.0.weight" in state_dict
    path = save(tmp_path / "g.pt", state_dict, wrap=form != "bare")
    generator = load_hifigan(path, SMALL)
    with torch.no_grad():
        torch.testing.assert_close(generator(mel), expected)


def test_config_none_picks_the_matching_preset(tmp_path: Path) -> None:
    path = save(tmp_path / "g_v3", original_generator("v3").state_dict())
    generator = load_hifigan(path)
    assert generator.upsample_rates == (8, 8, 4)
    assert generator.resblock == "2"


def test_config_json_with_training_fields(tmp_path: Path) -> None:
    config = {**SMALL, "batch_size": 16, "learning_rate": 0.0002,
              "sampling_rate": 22050, "num_mels": 80, "segment_size": 8192}
    (tmp_path / "config.json").write_text(json.dumps(config))
    original = original_generator("small")
    path = save(tmp_path / "g_small", original.state_dict())
    from_file = load_hifigan(path, tmp_path / "config.json")
    from_dict = load_hifigan(path, config)
    assert from_file.upsample_initial_channel == 32 == from_dict.upsample_initial_channel
    mel = torch.randn(1, 80, FRAMES)
    with torch.no_grad():
        torch.testing.assert_close(from_file(mel), original(mel))


def test_wrong_preset_names_mismatched_keys_and_shapes(tmp_path: Path) -> None:
    path = save(tmp_path / "g_v2", original_generator("v2").state_dict())
    with pytest.raises(ValueError) as info:
        load_hifigan(path, "v1")
    message = str(info.value)
    assert "conv_pre.weight_v: checkpoint (128, 80, 7) vs model (512, 80, 7)" in message
    assert message.count("shape mismatch:") == 12  # the first dozen, then a count


def test_missing_and_unexpected_keys_are_all_listed(tmp_path: Path) -> None:
    state_dict = original_generator("v3").state_dict()
    del state_dict["ups.1.bias"], state_dict["resblocks.8.convs.1.weight_v"]
    state_dict["ups.3.bias"] = torch.zeros(16)
    path = save(tmp_path / "g_broken", state_dict)
    with pytest.raises(ValueError) as info:
        load_hifigan(path, "v3")
    message = str(info.value)
    assert "3 problem(s)" in message
    assert "missing key: ups.1.bias" in message
    assert "missing key: resblocks.8.convs.1.parametrizations.weight.original1" in message
    assert "unexpected key: ups.3.bias" in message


def test_unmatched_checkpoint_without_config_suggests_config(tmp_path: Path) -> None:
    state_dict = original_generator("v3").state_dict()
    state_dict["conv_post.bias"] = torch.zeros(2)
    path = save(tmp_path / "g_odd", state_dict)
    with pytest.raises(ValueError, match="closest preset shown; pass config="):
        load_hifigan(path)


def test_bad_paths_and_files(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="does not exist"):
        load_hifigan(tmp_path / "missing.pt", "v1")
    (tmp_path / "garbage.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="is not a torch checkpoint"):
        load_hifigan(tmp_path / "garbage.pt", "v1")
    torch.save({"optim_g": {"lr": 1.0}}, tmp_path / "do_00000000")
    with pytest.raises(ValueError, match="neither a state_dict nor a dict with key 'generator'"):
        load_hifigan(tmp_path / "do_00000000", "v1")


def test_bad_config(tmp_path: Path) -> None:
    path = save(tmp_path / "g", {"conv_pre.bias": torch.zeros(1)})
    with pytest.raises(ValueError, match="preset name"):
        load_hifigan(path, "v9")
    with pytest.raises(TypeError, match="config must be"):
        load_hifigan(path, 3)  # type: ignore[arg-type]


def test_generator_direct_load_state_dict_round_trip() -> None:
    torch.manual_seed(0)
    first = HiFiGANGenerator.from_preset("v3", upsample_initial_channel=32)
    second = HiFiGANGenerator.from_preset("v3", upsample_initial_channel=32)
    second.load_state_dict(first.state_dict())
    mel = torch.randn(1, 80, FRAMES)
    with torch.no_grad():
        torch.testing.assert_close(second(mel), first(mel))


SMALL_V3 = {**ref.CONFIGS["v3"], "upsample_initial_channel": 32}  # ResBlock2's convs.* keys


@pytest.mark.parametrize("config", [SMALL, SMALL_V3], ids=["v2_layout", "v3_layout"])
def test_hifigan_state_dict_loads_into_the_original(tmp_path: Path, config: dict) -> None:
    """Our weights in the original layout: the original generator loads them strictly (flat
    keys, weight_g / weight_v) and computes our output; a g_* file of them loads back."""
    torch.manual_seed(1)
    ours = HiFiGANGenerator(**config).eval()
    original = upstream.hifigan_generator(config).eval()
    original.load_state_dict(hifigan_state_dict(ours), strict=True)
    mel = torch.randn(1, 80, FRAMES)
    with torch.no_grad():
        torch.testing.assert_close(original(mel), ours(mel))
        back = load_hifigan(save(tmp_path / "g_b", hifigan_state_dict(ours)), config)
        torch.testing.assert_close(back(mel), ours(mel))
        ours.remove_weight_norm()
        upstream.remove_weight_norm(original)
        assert set(hifigan_state_dict(ours)) == set(original.state_dict())
        assert len(hifigan_state_dict(ours)) == len(ours.state_dict())


def test_nested_checkpoint_of_our_own_generator_loads(tmp_path: Path) -> None:
    """A bare ``generator.state_dict()`` (nested ``stages.*`` keys) loads as well."""
    torch.manual_seed(2)
    ours = HiFiGANGenerator(**SMALL).eval()
    loaded = load_hifigan(save(tmp_path / "g_nested", ours.state_dict(), wrap=False), SMALL)
    mel = torch.randn(1, 80, FRAMES)
    with torch.no_grad():
        torch.testing.assert_close(loaded(mel), ours(mel))
