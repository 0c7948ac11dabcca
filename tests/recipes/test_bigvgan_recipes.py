"""BigVGAN through the configs and recipes: presets, vocode from a checkpoint, analyze, export."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import soundfile as sf
import torch
from omegaconf import DictConfig

from recipe_support import compose_config, load_recipe
from upsampler import BigVGANGenerator
from upsampler.export import run_program
from upsampler.models.bigvgan import PRESETS
from upsampler.recipe_support.build import generator_fields

NARROW = ["model.upsample_initial_channel=16"]  # the presets' layout, small enough to be fast
HOP = 256

vocode, analyze, export = load_recipe("vocode"), load_recipe("analyze"), load_recipe("export")


@pytest.fixture(autouse=True)
def one_thread():
    """One intra-op thread: on a loaded 2-core machine two threads spin-wait on each other
    through the hundreds of small ops of these models."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_model_configs_equal_the_presets(name: str) -> None:
    audio = "22k_hop256" if name == "base_22k" else "24k_hop256"
    cfg = compose_config("vocode", [f"model=bigvgan_{name}", f"audio={audio}"])
    fields = generator_fields(cfg.model)
    preset = {k: list(v) if isinstance(v, tuple) else v for k, v in PRESETS[name].items()}
    preset["resblock_dilation_sizes"] = [list(d) for d in preset["resblock_dilation_sizes"]]
    assert {k: fields[k] for k in preset} == preset
    assert fields["upsampler"] == "transposed" and fields["anti_alias"] is True
    assert cfg.audio.num_mels == fields["num_mels"] and cfg.audio.hop_length == HOP


def vocode_cfg(output_dir: Path, *overrides: str) -> DictConfig:
    return compose_config("vocode", [
        "checkpoint=none", "model=bigvgan_base_24k", "audio=24k_hop256",
        f"output_dir={output_dir}", "progress=false", "figures=false", *NARROW, *overrides,
    ])


def test_vocode_from_a_bigvgan_checkpoint(tmp_path: Path) -> None:
    torch.manual_seed(3)
    generator = BigVGANGenerator.from_preset("base_24k", upsample_initial_channel=16)
    torch.save({"generator": generator.state_dict()}, tmp_path / "bigvgan_generator.pt")
    mel = torch.randn(100, 7)
    torch.save(mel, tmp_path / "mel.pt")
    out = tmp_path / "out"
    summary = vocode.run(vocode_cfg(out, f"input={tmp_path / 'mel.pt'}",
                                     f"checkpoint={tmp_path / 'bigvgan_generator.pt'}"))
    assert summary["files"][0]["samples"] == 7 * HOP
    written, rate = sf.read(out / "mel.wav", dtype="float32")
    assert rate == 24000
    with torch.no_grad():
        expected = generator.eval()(mel.unsqueeze(0)).view(-1).numpy()
    assert abs(written - expected).max() <= 2.0**-15  # 16-bit PCM: one quantisation step


def test_vocode_with_the_wrong_audio_config_names_the_fix(tmp_path: Path) -> None:
    with pytest.raises(Exception, match="num_mels=100 .* num_mels=80"):
        vocode.run(vocode_cfg(tmp_path, "audio=22k_hop256"))


def test_analyze_reports_bigvgan(tmp_path: Path) -> None:
    cfg = compose_config("analyze", [
        "model=bigvgan_base_22k", "audio=22k_hop256", f"output_dir={tmp_path}",
        "progress=false", "figures=false", "max_input_channels=2", *NARROW,
    ])
    report = analyze.run(cfg)
    assert report["strides"] == [8, 8, 2, 2] and report["upsampler"] == "transposed"
    # the last stage (16 channels halved three times in, stride 2), with and without filters
    aliasing = report["aliasing_db"]
    assert (aliasing["stage"], aliasing["in_channels"], aliasing["stride"]) == (3, 2, 2)
    for entry in (aliasing, aliasing["without_anti_alias"]):
        assert all(math.isfinite(v) for v in entry["sweep_mean"].values())
    assert aliasing["sweep_mean"]["mean"] != aliasing["without_anti_alias"]["sweep_mean"]["mean"]
    assert json.loads((tmp_path / "report.json").read_text()) == report


def test_export_bigvgan_onnx_and_program(tmp_path: Path) -> None:
    """The recipe's default formats (ONNX and a ``torch.export`` program) carry BigVGAN's
    anti-aliased activations, and the program runs at a length the export never saw."""
    for module in ("onnx", "onnxruntime", "onnxscript"):
        pytest.importorskip(module)
    cfg = compose_config("export", [
        "model=bigvgan_v2_24k_256x", "audio=24k_hop256", f"output_dir={tmp_path}",
        # two stages and one small AMP block each: the ONNX exporter takes ~1 s per op here
        "model.upsample_rates=[16,16]", "model.upsample_kernel_sizes=[32,32]",
        "model.upsample_initial_channel=8", "model.resblock_kernel_sizes=[3]",
        "model.resblock_dilation_sizes=[[1]]", "example_frames=5", "verify_frames=[3,11]",
    ])
    results = export.run(cfg)
    assert sorted(results) == ["onnx", "program"]
    for fmt in ("onnx", "program"):
        assert results[fmt]["max_abs_error"] <= 1e-4
    audio = run_program(tmp_path / "generator.pt2", torch.randn(1, 100, 4))
    assert audio.shape == (1, 1, 4 * HOP)
