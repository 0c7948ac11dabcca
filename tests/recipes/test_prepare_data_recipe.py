"""Smoke tests of recipes/prepare_data.py on hand-built .deb files in the cache (no download)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from omegaconf import DictConfig

from fake_corpus import make_allison_debs
from omegaconf import OmegaConf
from option_battery import BAD_VALUES, battery, tree_state, with_value
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


# Options and output folders are checked before anything is fetched or written.

ALLOWED = {"trim_margin_seconds=0", "holdout_min_seconds=0"}  # zero margin / no minimum


def test_every_bad_option_is_one_line_before_any_write(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Each option of configs/prepare_data.yaml given a wrong type, 0, -1 or nothing is
    refused naming it, with the tree (the cached .deb files, the working folder) unchanged."""
    make_allison_debs(tmp_path / "fake", tmp_path / "cache")
    monkeypatch.chdir(tmp_path)  # a relative output_dir that slipped through would land here
    before = tree_state(tmp_path)
    base = make_cfg(tmp_path)
    cases = [case for case in battery(base) if case[1] not in ALLOWED]
    assert {option for option, _, _ in cases} == {
        "output_dir", "cache_dir", "sample_rate", "bitrate", "trim_top_db",
        "trim_margin_seconds", "holdout_every", "holdout_min_seconds"}
    for option, override, value in cases:
        with pytest.raises(RecipeError) as caught:
            prepare_data.run(with_value(base, option, value))
        message = str(caught.value)
        assert message.startswith(f"{option} must be ") and "\n" not in message, override
        assert tree_state(tmp_path) == before, override


def test_battery_values_are_what_hydra_parses() -> None:
    """option_battery sets the values Hydra would make of each override."""
    for override, value in BAD_VALUES.items():
        composed = compose_config("prepare_data", [f"cache_dir={override}"])
        parsed = OmegaConf.to_container(composed)["cache_dir"]
        assert parsed == value and type(parsed) is type(value), override


def test_holdout_every_1_is_refused_and_a_valid_rerun_then_works(tmp_path: Path) -> None:
    make_allison_debs(tmp_path / "fake", tmp_path / "cache")
    with pytest.raises(RecipeError, match=r"holdout_every must be an integer >= 2, got 1$"):
        prepare_data.run(make_cfg(tmp_path, "holdout_every=1"))
    assert not (tmp_path / "allison").exists()
    assert prepare_data.run(make_cfg(tmp_path, "holdout_every=2"))["validation"]["utterances"] == 1


def make_user_corpus(root: Path) -> Path:
    """A user's own corpus in HiFi-GAN's layout (no settings.json of prepare_data)."""
    (root / "wavs").mkdir(parents=True)
    (root / "wavs" / "mine.wav").write_bytes(b"RIFF not really a wav")
    for name in ("training.txt", "validation.txt", "README.txt"):
        (root / name).write_text(f"the user's {name}\n")
    return root


@pytest.mark.parametrize("settings_json", [None, '{"sample_rate": 22050}', "not json"])
def test_a_users_corpus_is_refused_naming_its_files(tmp_path: Path,
                                                    settings_json: str | None) -> None:
    make_allison_debs(tmp_path / "fake", tmp_path / "cache")
    corpus = make_user_corpus(tmp_path / "allison")
    if settings_json is not None:  # another program's settings.json is not a record of ours
        (corpus / "settings.json").write_text(settings_json)
    before = tree_state(tmp_path)
    with pytest.raises(RecipeError, match="holds files no earlier prepare_data run recorded") \
            as caught:
        prepare_data.run(make_cfg(tmp_path))
    assert f"'{corpus / 'training.txt'}'" in str(caught.value)
    assert f"'{corpus / 'wavs'}'" in str(caught.value) and "\n" not in str(caught.value)
    assert tree_state(tmp_path) == before


def test_rerun_into_its_own_folder_resumes(tmp_path: Path) -> None:
    make_allison_debs(tmp_path / "fake", tmp_path / "cache")
    first = prepare_data.run(make_cfg(tmp_path, "holdout_every=2"))
    (tmp_path / "allison" / "wavs" / "hello.wav").unlink()  # as if interrupted before it
    second = prepare_data.run(make_cfg(tmp_path, "holdout_every=2"))
    assert first["written"] == 5 and (second["written"], second["kept"]) == (1, 4)
    with pytest.raises(RecipeError, match="was prepared with"):
        prepare_data.run(make_cfg(tmp_path, "holdout_every=3"))


def test_empty_existing_output_dir_is_used(tmp_path: Path) -> None:
    make_allison_debs(tmp_path / "fake", tmp_path / "cache")
    (tmp_path / "allison").mkdir()
    assert prepare_data.run(make_cfg(tmp_path, "holdout_every=2"))["written"] == 5
