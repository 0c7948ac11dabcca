"""Every yaml under configs/ composes with Hydra's compose API and instantiates."""

from __future__ import annotations

import math

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from recipe_support import CONFIGS, compose_config
from upsampler.layers import make_upsampler
from upsampler.lengths import kernel_sizes_for_rates
from upsampler.recipe_support.build import check_model_matches_audio

GROUPS = ("model", "upsampler", "audio")
TOP_LEVEL = sorted(path.stem for path in CONFIGS.glob("*.yaml"))
OPTIONS = {group: sorted(path.stem for path in (CONFIGS / group).glob("*.yaml"))
           for group in GROUPS}
# Parameter counts with weight norm folded, of the published HiFi-GAN generator checkpoints.
PUBLISHED_PARAMETERS = {"hifigan_v1": 13_926_017, "hifigan_v2": 925_985, "hifigan_v3": 1_462_273}
# (sample rate, hop, mels) each audio config must state: LJSpeech, LibriTTS-style, 24 kHz.
AUDIO_SETTINGS = {"22k_hop256": (22050, 256, 80), "16k_hop200": (16000, 200, 80),
                  "24k_hop300": (24000, 300, 100)}
MEL_FRAMES = 5


def compose_vocode(*overrides: str) -> DictConfig:
    return compose_config("vocode", overrides)


def test_the_documented_options_exist() -> None:
    assert {"hifigan_v1", "hifigan_v2", "hifigan_v3", "debug"} <= set(OPTIONS["model"])
    assert set(OPTIONS["upsampler"]) == {"transposed", "nearest_conv", "linear_conv", "subpixel",
                                         "subpixel_icnr"}
    assert set(AUDIO_SETTINGS) <= set(OPTIONS["audio"])


@pytest.mark.parametrize("name", TOP_LEVEL)
def test_top_level_config_composes_and_its_targets_instantiate(name: str) -> None:
    defaults = OmegaConf.load(CONFIGS / f"{name}.yaml").get("defaults", [])
    uses_model = any(isinstance(entry, DictConfig) and "model" in entry for entry in defaults)
    cfg = compose_config(name, ["model=debug"] if uses_model else [])
    built = {key: instantiate(node) for key, node in cfg.items_ex(resolve=False)
             if isinstance(node, DictConfig) and "_target_" in node}
    if uses_model:
        assert isinstance(built["model"], torch.nn.Module)
        check_model_matches_audio(built["model"], built["audio"])


@pytest.mark.parametrize("name", OPTIONS["audio"])
def test_audio_config_instantiates_a_mel_front_end(name: str) -> None:
    cfg = compose_vocode(f"audio={name}")
    mel_transform = instantiate(cfg.audio)
    stated = OmegaConf.to_container(cfg.audio)
    for field in ("sample_rate", "n_fft", "hop_length", "win_length", "num_mels", "fmin", "fmax"):
        assert getattr(mel_transform, field) == stated[field]
    if name in AUDIO_SETTINGS:
        sample_rate, hop, mels = AUDIO_SETTINGS[name]
        assert (mel_transform.sample_rate, mel_transform.hop_length, mel_transform.num_mels) == (
            sample_rate, hop, mels)
    seeded = torch.Generator().manual_seed(0)
    wav = torch.randn(MEL_FRAMES * mel_transform.hop_length, generator=seeded)
    assert mel_transform(wav).shape == (mel_transform.num_mels, MEL_FRAMES)


@pytest.mark.parametrize("name", OPTIONS["upsampler"])
def test_upsampler_config_builds_an_exact_length_layer(name: str) -> None:
    cfg = compose_vocode(f"upsampler={name}", "model=debug")
    layer = make_upsampler(cfg.upsampler.kind, in_channels=4, out_channels=2, stride=3,
                           kernel_size=6)
    x = torch.randn(1, 4, 5, generator=torch.Generator().manual_seed(0))
    assert layer(x).shape == (1, 2, 15)
    assert instantiate(cfg.model).upsampler == name


@pytest.mark.parametrize("name", PUBLISHED_PARAMETERS)
def test_preset_configs_have_the_published_parameter_counts(name: str) -> None:
    generator = instantiate(compose_vocode(f"model={name}").model)
    generator.remove_weight_norm()
    assert sum(p.numel() for p in generator.parameters()) == PUBLISHED_PARAMETERS[name]
    assert generator.hop_length == 256


@pytest.mark.parametrize("audio", sorted(AUDIO_SETTINGS))
def test_debug_model_matches_every_audio_config(audio: str) -> None:
    cfg = compose_vocode("model=debug", f"audio={audio}")
    generator, mel_transform = instantiate(cfg.model), instantiate(cfg.audio)
    check_model_matches_audio(generator, mel_transform)
    _, hop, mels = AUDIO_SETTINGS[audio]
    mel = torch.randn(1, mels, MEL_FRAMES, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        assert generator(mel).shape == (1, 1, MEL_FRAMES * hop)


@pytest.mark.parametrize("audio", sorted(AUDIO_SETTINGS))
def test_any_hop_model_plans_rates_for_the_audio_hop(audio: str) -> None:
    from upsampler.recipe_support.build import generator_fields

    fields = generator_fields(compose_vocode("model=hifigan_any_hop", f"audio={audio}").model)
    _, hop, mels = AUDIO_SETTINGS[audio]
    assert math.prod(fields["upsample_rates"]) == hop and fields["num_mels"] == mels
    assert fields["upsample_kernel_sizes"] == [2 * rate for rate in fields["upsample_rates"]]


def test_any_hop_model_instantiates() -> None:
    generator = instantiate(compose_vocode("model=hifigan_any_hop", "audio=24k_hop300").model)
    assert list(generator.upsample_rates) == [5, 5, 4, 3]  # 300 = 5 * 5 * 4 * 3


def test_preset_with_another_hop_is_rejected_with_the_fix() -> None:
    cfg = compose_vocode("model=hifigan_v2", "model.upsample_initial_channel=16",
                         "audio=16k_hop200")
    expected = r"model hop_length=256 .* audio hop_length=200.*audio=22k_hop256"
    with pytest.raises(ValueError, match=expected):
        check_model_matches_audio(instantiate(cfg.model), instantiate(cfg.audio))


def test_mel_count_mismatch_is_rejected() -> None:
    cfg = compose_vocode("model=debug", "model.num_mels=100")
    with pytest.raises(ValueError, match="num_mels=100 .* num_mels=80"):
        check_model_matches_audio(instantiate(cfg.model), instantiate(cfg.audio))


def test_kernel_sizes_for_rates_hand_worked() -> None:
    assert kernel_sizes_for_rates([8, 8, 2, 2]) == [16, 16, 4, 4]
    assert kernel_sizes_for_rates([5, 5, 4, 3], kernel_per_stride=3) == [15, 15, 12, 9]
    with pytest.raises(ValueError, match="upsample_rates"):
        kernel_sizes_for_rates([8, 0])
