"""Smoke tests of recipes/prepare_data.py on hand-built .deb files in the cache (no download)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from omegaconf import DictConfig

from fake_corpus import make_allison_debs
from recipe_support import compose_config, load_recipe

from upsampler.audio import MelSpectrogram
from upsampler.recipe_support.errors import RecipeError
from upsampler.training import debian
from upsampler.training.data import SegmentDataset, read_file_list

prepare_data = load_recipe("prepare_data")


def make_cfg(tmp_path: Path, *overrides: str) -> DictConfig:
    return compose_config("prepare_data", [
        f"output_dir={tmp_path / 'allison'}", f"cache_dir={tmp_path / 'cache'}", *overrides])


def test_prepare_data_from_cached_debs_feeds_the_dataset(tmp_path: Path) -> None:
    make_allison_debs(tmp_path / "fake", tmp_path / "cache")
    summary = prepare_data.run(make_cfg(tmp_path, "holdout_every=2"))
    out = tmp_path / "allison"
    assert summary["training"]["utterances"] == 4 and summary["validation"]["utterances"] == 1
    assert json.loads((out / "corpus.json").read_text()) == summary
    assert "Allison Smith" in (out / "COPYING").read_text()
    files = read_file_list(out / "training.txt", out / "wavs")
    mel = MelSpectrogram(sample_rate=16000, n_fft=1024, hop_length=200, win_length=800)
    # digits/1 and letters/1 last 0.4 s and 0.3 s, plus 0.05 s margins: under 9000 samples
    with pytest.warns(UserWarning, match="2 of 4 files"):
        data = SegmentDataset(files, mel, segment_length=45 * 200)
    assert data[0][1].shape == (1, 9000)


def test_prepare_data_without_apt_get_is_one_line(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(debian.shutil, "which", lambda name: None)
    with pytest.raises(RecipeError, match="apt-get is not available.*by hand") as caught:
        prepare_data.run(make_cfg(tmp_path))
    assert "\n" not in str(caught.value)
