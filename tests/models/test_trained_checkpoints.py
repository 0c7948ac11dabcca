"""Checkpoints written by recipes/train.py load everywhere, for HiFi-GAN and BigVGAN.

Each architecture trains two tiny steps; the ``g_`` file is in its family's release layout
(BigVGAN: ``ups.{i}.0.*``), and vocode, evaluate, export, analyze and resume read it with
only ``checkpoint=<g_> model_config=<config.json>`` (no ``model=bigvgan_*``). BigVGAN files
in the flat layout train.py wrote before still load and resume; ``load_hifigan`` on a
BigVGAN file says so in one line; evaluate's untrained twin is the same architecture.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import soundfile as sf
import torch

from recipe_support import compose_config, load_recipe
from training_support import one_thread, write_corpus  # noqa: F401 (a fixture)
from upsampler import BigVGANGenerator, HiFiGANGenerator, load_bigvgan, load_hifigan
from upsampler.models import bigvgan_state_dict, hifigan_state_dict
from upsampler.models.family import describes_bigvgan
from upsampler.recipe_support.build import build_generator, checkpoint_is_bigvgan

SAMPLE_RATE, HOP = 16000, 200  # configs/audio/16k_hop200.yaml
FAMILIES = {"hifigan": ("debug", HiFiGANGenerator), "bigvgan": ("bigvgan_demo", BigVGANGenerator)}
# the demo BigVGAN at the debug model's size: one small AMP block per stage, 16 channels in
SMALL = ["model.upsample_initial_channel=16", "model.resblock_kernel_sizes=[3]",
         "model.resblock_dilation_sizes=[[1,3]]"]

train, vocode = load_recipe("train"), load_recipe("vocode")
evaluate, export, analyze = load_recipe("evaluate"), load_recipe("export"), load_recipe("analyze")
pytestmark = pytest.mark.usefixtures("one_thread")


SMALL_FIELDS = {"num_mels": 80, "upsample_rates": [5, 5, 4, 2],
                "upsample_kernel_sizes": [10, 10, 8, 4], "upsample_initial_channel": 16,
                "resblock": "2", "resblock_kernel_sizes": [3], "resblock_dilation_sizes": [[1, 3]]}


def small_bigvgan() -> BigVGANGenerator:
    torch.manual_seed(0)
    return BigVGANGenerator(**SMALL_FIELDS)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_corpus(tmp_path_factory.mktemp("corpus"), 2, 0, SAMPLE_RATE // 4)


def train_cfg(corpus: Path, output_dir: Path, family: str, *overrides: str):
    model = FAMILIES[family][0]
    return compose_config("train", [
        "audio=16k_hop200", f"model={model}", *(SMALL if family == "bigvgan" else []),
        "discriminator.periods=[2,3]", "discriminator.period_channels=[2,2,2,2,2]",
        "discriminator.scale_channels=[2,2,2,2,2,2,2]",
        "discriminator.scale_groups=[1,1,1,1,1,1,1]",
        f"data.train_list={corpus / 'training.txt'}", f"data.wav_dir={corpus / 'wavs'}",
        "data.segment_length=1200", "data.batch_size=1", "warmup_steps=1",
        "validation_every=null", "checkpoint_every=2", "keep_checkpoints=null", "log_every=1",
        "num_threads=1", "progress=false", "tensorboard=false", f"output_dir={output_dir}",
        "max_steps=2", *overrides,
    ])


@pytest.fixture(scope="module", params=sorted(FAMILIES))
def trained(request: pytest.FixtureRequest, corpus: Path,
            tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    """(family, run folder) after two training steps."""
    family = request.param
    run_dir = tmp_path_factory.mktemp(f"run_{family}")
    torch.set_num_threads(1)
    assert train.run(train_cfg(corpus, run_dir, family))["step"] == 2
    return family, run_dir


def checkpoint_overrides(run_dir: Path) -> list[str]:
    return [f"checkpoint={run_dir / 'g_00000002'}", f"model_config={run_dir / 'config.json'}"]


def test_train_writes_the_family_release_layout(trained: tuple[str, Path]) -> None:
    family, run_dir = trained
    keys = torch.load(run_dir / "g_00000002", weights_only=True)["generator"].keys()
    upsampler_keys = sorted(key for key in keys if key.startswith("ups.0."))
    infix = "ups.0.0." if family == "bigvgan" else "ups.0."
    assert upsampler_keys and all(key.startswith(infix) for key in upsampler_keys)
    assert "ups.0.0.weight_g" in keys if family == "bigvgan" else "ups.0.weight_g" in keys
    config = json.loads((run_dir / "config.json").read_text())
    assert describes_bigvgan(config) is (family == "bigvgan")
    loader = load_bigvgan if family == "bigvgan" else load_hifigan
    model = loader(run_dir / "g_00000002", config=run_dir / "config.json")
    assert type(model) is FAMILIES[family][1]


def test_vocode_evaluate_export_analyze_read_the_checkpoint(trained: tuple[str, Path],
                                                             tmp_path: Path) -> None:
    family, run_dir = trained
    cls = FAMILIES[family][1]
    given = checkpoint_overrides(run_dir)  # the default model group is HiFi-GAN V1
    mel = torch.randn(80, 5)
    torch.save(mel, tmp_path / "mel.pt")
    summary = vocode.run(compose_config("vocode", [
        *given, f"input={tmp_path / 'mel.pt'}", f"output_dir={tmp_path / 'vocode'}",
        "progress=false", "figures=false"]), overrides=given)
    assert summary["files"][0]["samples"] == 5 * HOP
    written, rate = sf.read(tmp_path / "vocode" / "mel.wav", dtype="float32")
    loader = load_bigvgan if family == "bigvgan" else load_hifigan
    generator = loader(run_dir / "g_00000002", config=run_dir / "config.json")
    generator.remove_weight_norm()
    with torch.no_grad():
        expected = generator.eval()(mel.unsqueeze(0)).view(-1).numpy()
    assert rate == SAMPLE_RATE and abs(written - expected).max() <= 2.0**-15

    results = evaluate.run(compose_config("evaluate", [
        *given, f"output_dir={tmp_path / 'evaluate'}"]), overrides=given)
    assert results["model"]["mel_l1"] > 0 and results["untrained"]["mel_l1"] > 0

    exported = export.run(compose_config("export", [
        *given, f"output_dir={tmp_path / 'export'}", "formats=[torchscript]",
        "example_frames=4", "verify_frames=[3]"]))
    assert exported["torchscript"]["max_abs_error"] <= 1e-4

    report = analyze.run(compose_config("analyze", [
        *given, f"output_dir={tmp_path / 'analyze'}", "figures=false", "progress=false",
        "max_input_channels=1"]), overrides=given)
    assert report["checkpoint"] == str(run_dir / "g_00000002")
    assert report["strides"] == [5, 5, 4, 2]

    cfg = compose_config("vocode", given)
    assert checkpoint_is_bigvgan(cfg) is (family == "bigvgan")
    assert type(build_generator(cfg)) is cls


def test_untrained_twin_is_the_same_architecture(trained: tuple[str, Path]) -> None:
    family, run_dir = trained
    cfg = compose_config("evaluate", checkpoint_overrides(run_dir))
    generator = build_generator(cfg, seed=0)
    twin = evaluate.untrained_twin(generator, cfg, seed=0)
    assert type(twin) is type(generator) is FAMILIES[family][1]
    count = [sum(p.numel() for p in model.parameters()) for model in (generator, twin)]
    assert count[0] == count[1]
    assert [tuple(p.shape) for p in generator.parameters()] == \
        [tuple(p.shape) for p in twin.parameters()]
    assert not torch.equal(generator.conv_pre.weight, twin.conv_pre.weight)  # untrained


def test_resume_continues_both_layouts(trained: tuple[str, Path], corpus: Path,
                                       tmp_path: Path) -> None:
    family, run_dir = trained
    layouts = {"release": None}
    if family == "bigvgan":  # what train.py wrote for BigVGAN runs before the release layout
        old = load_bigvgan(run_dir / "g_00000002", config=run_dir / "config.json")
        layouts["flat"] = hifigan_state_dict(old)
        assert "ups.0.weight_g" in layouts["flat"]
    for name, generator_state in layouts.items():
        folder = tmp_path / name
        folder.mkdir()
        # a run folder from before the records: its pair, config.json and metrics.jsonl
        for file in ("g_00000002", "do_00000002", "config.json", "metrics.jsonl"):
            (folder / file).write_bytes((run_dir / file).read_bytes())
        if generator_state is not None:
            torch.save({"generator": generator_state}, folder / "g_00000002")
            reloaded = load_bigvgan(folder / "g_00000002", config=folder / "config.json")
            assert torch.equal(reloaded.conv_post.parametrizations.weight.original1,
                               old.conv_post.parametrizations.weight.original1)
        result = train.run(train_cfg(corpus, folder, family, "max_steps=3", "resume=true"))
        assert result["step"] == 3 and (folder / "g_00000003").is_file()


def test_load_hifigan_names_a_bigvgan_checkpoint_in_its_first_line(tmp_path: Path) -> None:
    generator = small_bigvgan()
    files = {"nested": generator.state_dict(),  # ours, parametrized weight norm, bare
             "flat": {"generator": hifigan_state_dict(generator)},  # train.py's old layout
             "bigvgan": {"generator": bigvgan_state_dict(generator)}}
    for name, content in files.items():
        torch.save(content, tmp_path / name)
        with pytest.raises(ValueError) as error:
            load_hifigan(tmp_path / name, config="v1")
        message = str(error.value)
        assert "\n" not in message
        assert "is a BigVGAN generator checkpoint" in message and "load_bigvgan" in message
        assert "model_config=" in message
        loaded = load_bigvgan(tmp_path / name, config=SMALL_FIELDS)
        for key, tensor in generator.state_dict().items():
            assert torch.equal(loaded.state_dict()[key], tensor), (name, key)


def test_describes_bigvgan(tmp_path: Path) -> None:
    assert describes_bigvgan("base_22k") and describes_bigvgan("V2_24K_256X")
    assert not describes_bigvgan("v1") and not describes_bigvgan(None)
    assert describes_bigvgan({"activation": "snake"}) and not describes_bigvgan({"num_mels": 80})
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"resblock": "1", "snake_logscale": True}))
    assert describes_bigvgan(path) and describes_bigvgan(str(path))
    path.write_text("{not json")
    with pytest.raises(ValueError, match="config.json' is not readable JSON"):
        describes_bigvgan(path)
