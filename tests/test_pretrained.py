"""The vocoder shipped in the package: it loads, its config fixes the front end, it speaks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from recipe_support import compose_config, load_recipe
from upsampler.audio import BUNDLED_SPEECH, load_audio, mel_kwargs_from_config
from upsampler.models import HiFiGANGenerator
from upsampler.models.checkpoint import generator_kwargs
from upsampler.models.pretrained import load_pretrained, pretrained_files
from upsampler.recipe_support.build import resolve_checkpoint

metrics = pytest.importorskip("upsampler.training.metrics")
pytest.importorskip("pystoi")

# The shipped model scores STOI ~0.8 on the bundled ARCTIC recording (a speaker it never
# heard); its untrained twin ~0.5. 0.7 leaves room for BLAS rounding and still fails for
# an untrained or broken model.
MIN_STOI = 0.7
MAX_UNSHIPPED_BYTES = 10 * 2**20


def test_shipped_files_are_small_and_credited() -> None:
    checkpoint, config = pretrained_files("demo")
    assert checkpoint.stat().st_size < MAX_UNSHIPPED_BYTES
    folder = checkpoint.parent
    assert "Allison Smith" in (folder / "COPYING").read_text()
    assert "recipes/train.py" in (folder / "TRAINING.md").read_text()
    assert json.loads(config.read_text())["hop_size"] == 200


def test_unknown_pretrained_name_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="one of \\['demo'\\], got 'best'"):
        pretrained_files("best")


def test_shipped_vocoder_copy_synthesis_is_intelligible() -> None:
    generator, mel_transform = load_pretrained("demo")
    assert sum(p.numel() for p in generator.parameters()) < 2_000_000
    wav = load_audio(BUNDLED_SPEECH, mel_transform.sample_rate)
    wav = wav[: wav.numel() // mel_transform.hop_length * mel_transform.hop_length]
    with torch.no_grad():
        out = generator(mel_transform(wav).unsqueeze(0))[0, 0]
    assert out.numel() == wav.numel()
    torch.manual_seed(0)
    untrained = HiFiGANGenerator(**generator_kwargs(pretrained_files("demo")[1])).eval()
    with torch.no_grad():
        noise = untrained(mel_transform(wav).unsqueeze(0))[0, 0]
    trained_stoi = metrics.stoi(wav, out, mel_transform.sample_rate)
    untrained_stoi = metrics.stoi(wav, noise, mel_transform.sample_rate)
    assert trained_stoi > MIN_STOI
    assert trained_stoi > untrained_stoi + 0.2


def test_checkpoint_config_sets_the_audio_front_end(tmp_path: Path) -> None:
    cfg = resolve_checkpoint(compose_config("vocode", ["audio=22k_hop256"]))  # default: demo
    _, config = pretrained_files("demo")
    expected = mel_kwargs_from_config(json.loads(config.read_text()))
    assert {key: cfg.audio[key] for key in expected} == expected
    assert cfg.audio.sample_rate == 16000 and cfg.audio.hop_length == 200
    assert resolve_checkpoint(compose_config("vocode", ["checkpoint=none"])).checkpoint is None


def test_partial_audio_fields_are_refused() -> None:
    with pytest.raises(ValueError, match="lacks"):
        mel_kwargs_from_config({"sampling_rate": 16000, "hop_size": 200})


def test_evaluate_recipe_scores_the_model_above_its_untrained_twin(tmp_path: Path) -> None:
    evaluate = load_recipe("evaluate")
    results = evaluate.run(compose_config("evaluate", [f"output_dir={tmp_path}",
                                                       "num_threads=1"]))
    assert results["model"]["stoi"] > MIN_STOI > results["untrained"]["stoi"]
    assert results["model"]["mel_l1"] < results["untrained"]["mel_l1"]
    assert json.loads((tmp_path / "evaluate.json").read_text())["sample_rate"] == 16000
