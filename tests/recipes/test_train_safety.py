"""recipes/train.py never loses the user's files and never resumes into a different run.

Issue 21: keep_checkpoints=0 deleted every pair; a lone g_ file placed in the folder was
deleted; two runs shared a folder; resume accepted changed settings silently; a torn
metrics.jsonl line blocked every later run; bad options gave tracebacks. Data-loss tests
compare the folder's listing and hashes before and after.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from recipe_support import CONFIGS, HYDRA_VERSION_BASE, compose_config, load_recipe
from training_support import (  # noqa: F401 (one_thread: a fixture)
    one_thread,
    tiny_train_overrides,
    write_corpus,
)
from upsampler.recipe_support.errors import RecipeError
from upsampler.recipe_support.lock import RunLock
from upsampler.recipe_support.train_options import options, rule_for
from upsampler.recipe_support.train_records import read_record

train = load_recipe("train")
pytestmark = pytest.mark.usefixtures("one_thread")
SAMPLE_RATE = 16000


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_corpus(tmp_path_factory.mktemp("corpus"), 4, 0, SAMPLE_RATE // 4)


def tiny(corpus: Path, output_dir: Path, *overrides: str) -> list[str]:
    return tiny_train_overrides(corpus, output_dir, *overrides, max_steps=4, checkpoint_every=2)


def run(corpus: Path, output_dir: Path, *overrides: str) -> dict:
    return train.run(compose_config("train", tiny(corpus, output_dir, *overrides)))


@pytest.fixture(scope="module")
def base_run(corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished 4-step run: pairs at steps 2 and 4, config.json, metrics.jsonl, records."""
    folder = tmp_path_factory.mktemp("base") / "run"
    run(corpus, folder)
    return folder


def copy_run(base: Path, tmp_path: Path, name: str = "run") -> Path:
    target = tmp_path / name
    shutil.copytree(base, target, ignore=shutil.ignore_patterns(".run.lock"))
    return target


def snapshot(folder: Path) -> dict[str, str]:
    """Every path under ``folder`` with the SHA-256 of each file ("dir" for folders)."""
    return {str(p.relative_to(folder)): (hashlib.sha256(p.read_bytes()).hexdigest()
                                        if p.is_file() else "dir")
            for p in sorted(folder.rglob("*"))}


def refused(corpus: Path, folder: Path, *overrides: str) -> str:
    """The one-line refusal of a run, checking the folder is byte-for-byte unchanged."""
    before = snapshot(folder)
    with pytest.raises(RecipeError) as info:
        run(corpus, folder, *overrides)
    assert snapshot(folder) == before
    assert "\n" not in str(info.value)
    return str(info.value)


# 1. keep_checkpoints=0 deleted every pair (earlier runs' included) and exited 0
@pytest.mark.parametrize("value", ["0", "-1", "abc"])
def test_keep_checkpoints_must_be_positive(corpus: Path, base_run: Path, tmp_path: Path,
                                           value: str) -> None:
    folder = copy_run(base_run, tmp_path)
    message = refused(corpus, folder, "resume=true", "max_steps=6", f"keep_checkpoints={value}")
    assert "keep_checkpoints" in message and "positive integer or null" in message


# 2. a lone g_ (a HiFi-GAN release's generator) was deleted at the first save
@pytest.mark.parametrize("resume", ["false", "true"])
def test_foreign_generator_is_never_touched(corpus: Path, base_run: Path, tmp_path: Path,
                                            resume: str) -> None:
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    shutil.copy(base_run / "g_00000004", fresh / "g_02500000")
    message = refused(corpus, fresh, f"resume={resume}")
    assert "g_02500000" in message and f"init_generator={fresh / 'g_02500000'}" in message
    assert "adopt=true" in message
    ours = copy_run(base_run, tmp_path)  # a run's own folder with a user's file dropped in
    shutil.copy(base_run / "g_00000004", ours / "g_02500000")
    assert "g_02500000" in refused(corpus, ours, "resume=true", "max_steps=6")


def test_adopt_takes_over_a_copied_pair_and_legacy_folders_are_adopted(
        corpus: Path, base_run: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    # TRAINING.md: "runs/demo2 <- runs/demo/{g,do}_00005000 and config.json, then resume"
    copied = tmp_path / "copied"
    copied.mkdir()
    for name in ("g_00000004", "do_00000004", "config.json"):
        shutil.copy(base_run / name, copied / name)
    message = refused(corpus, copied, "resume=true", "max_steps=6")
    assert "do_00000004" in message and "adopt=true" in message
    assert run(corpus, copied, "resume=true", "adopt=true", "max_steps=6",
               "keep_checkpoints=1")["step"] == 6
    assert sorted(p.name for p in copied.glob("*_0*")) == ["do_00000006", "g_00000006"]
    assert read_record(copied)["history"][0]["adopted"] == ["do_00000004", "g_00000004",
                                                           "config.json"]
    legacy = copy_run(base_run, tmp_path, "legacy")  # made before records/ existed
    shutil.rmtree(legacy / "records")
    with caplog.at_level(logging.INFO, logger="train"):
        assert run(corpus, legacy, "resume=true", "max_steps=6")["step"] == 6
    assert "made before records/checkpoints.json" in caplog.text
    assert read_record(legacy)["checkpoints"] == [2, 4, 6]


# 4. two runs in one folder: both exited 0, metrics doubled, a temporary pruned
def test_second_run_in_a_locked_folder_is_refused(corpus: Path, base_run: Path,
                                                  tmp_path: Path) -> None:
    folder = copy_run(base_run, tmp_path)
    with RunLock(folder):  # another run is writing there
        message = refused(corpus, folder, "resume=true", "max_steps=6")
    assert "another run (pid" in message


def test_default_folder_is_one_per_launch(monkeypatch: pytest.MonkeyPatch) -> None:
    def run_dir() -> str:
        with initialize_config_dir(config_dir=str(CONFIGS), version_base=HYDRA_VERSION_BASE):
            cfg = compose("train", return_hydra_config=True)
        return str(OmegaConf.select(cfg, "hydra.run.dir"))

    monkeypatch.delenv("TORCHELASTIC_RUN_ID", raising=False)
    plain = run_dir()
    assert plain.endswith(f"-{os.getpid()}")  # the time and this process's id
    monkeypatch.setenv("TORCHELASTIC_RUN_ID", "launch-42")  # torchrun --standalone's id
    assert run_dir().endswith("/launch-42")
    monkeypatch.setenv("TORCHELASTIC_RUN_ID", "none")  # torchrun without --rdzv-id
    assert run_dir().endswith(f"/torchrun-{os.getppid()}")


# 5. resume=true accepted changes that keep parameter shapes and rewrote config.json
def test_resume_refuses_changed_meaning_unless_named(corpus: Path, base_run: Path,
                                                     tmp_path: Path) -> None:
    folder = copy_run(base_run, tmp_path)
    message = refused(corpus, folder, "resume=true", "max_steps=6", "audio.n_fft=2048",
                      "audio.fmax=7600", "model.resblock_dilation_sizes=[[1,2]]",
                      "upsampler=nearest_conv")
    for change in ("audio.n_fft: 1024 -> 2048", "audio.fmax: 8000 -> 7600",
                   "model.resblock_dilation_sizes", "upsampler.kind: 'transposed' -> "
                   "'nearest_conv'", "resume_changes=["):
        assert change in message
    old_config = (folder / "config.json").read_text()
    result = run(corpus, folder, "resume=true", "max_steps=6", "audio.fmax=7600",
                 "resume_changes=[audio.fmax]")
    assert result["step"] == 6
    assert json.loads((folder / "config.json").read_text())["fmax"] == 7600
    archive = folder / "settings_until_00000004"  # the pairs of the old settings, together
    assert (archive / "config.json").read_text() == old_config
    assert sorted(p.name for p in archive.glob("*_0*")) == [
        "do_00000002", "do_00000004", "g_00000002", "g_00000004"]
    assert sorted(p.name for p in folder.glob("[gd]*_0*")) == ["do_00000006", "g_00000006"]
    history = read_record(folder)["history"]
    assert history[-1]["resume_changes"] == ["audio.fmax"]
    assert history[-1]["changes"] == ["audio.fmax: 8000 -> 7600"]


# the README / TRAINING.md resumes: anneal the rate, extend the warm-up, more time
def test_documented_resumes_change_schedules_freely(corpus: Path, base_run: Path,
                                                    tmp_path: Path) -> None:
    folder = copy_run(base_run, tmp_path)
    before = torch.load(folder / "do_00000004", weights_only=True)["scheduler_g"]["gamma"]
    result = run(corpus, folder, "resume=true", "max_steps=6", "optimiser.lr_decay=0.5",
                 "warmup_minutes=1000", "max_minutes=210", "keep_checkpoints=2")
    assert result["step"] == 6
    end = torch.load(folder / "do_00000006", weights_only=True)
    assert end["scheduler_g"]["gamma"] == 0.5 != before
    free = read_record(folder)["history"][-1]["free_changes"]
    for option in ("optimiser.lr_decay", "warmup_minutes", "max_minutes", "keep_checkpoints"):
        assert any(change.startswith(option) for change in free), option
    assert sorted(p.name for p in folder.glob("g_*")) == ["g_00000004", "g_00000006"]


# 11. a torn last line of metrics.jsonl blocked every later run with JSONDecodeError
def test_torn_metrics_line_is_dropped_with_a_warning(corpus: Path, base_run: Path,
                                                     tmp_path: Path,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    folder = copy_run(base_run, tmp_path)
    with (folder / "metrics.jsonl").open("a") as stream:
        stream.write('{"kind": "train", "step": 5, "me')  # the disk filled up here
    assert run(corpus, folder, "resume=true", "max_steps=6")["step"] == 6
    assert "torn last line" in caplog.text
    steps = [json.loads(line)["step"] for line in (folder / "metrics.jsonl").read_text()
             .splitlines()]
    assert steps == [1, 2, 3, 4, 5, 6]


# 12. tracebacks for bad values, and resume=flase read as true
BAD_VALUES = ("abc", 0, -1, 2.5, True, [], None)


def battery() -> list[tuple[str, object]]:
    """Every option of the composed config with each value its rule refuses."""
    cfg = compose_config("train", ["output_dir=unused"])
    cases = []
    for path, _ in options(OmegaConf.to_container(cfg, resolve=True)):
        rule = rule_for(path)
        cases += [(path, value) for value in BAD_VALUES if not rule.accepts(value)]
    return cases


def test_every_option_has_a_rule_that_accepts_its_default() -> None:
    for name in sorted(p.stem for p in (CONFIGS / "model").glob("*.yaml")):
        cfg = compose_config("train", ["output_dir=unused", f"model={name}",
                                       "experiment=demo"])
        for path, value in options(OmegaConf.to_container(cfg, resolve=True)):
            rule = rule_for(path)
            assert rule is not None, f"{path} has no rule in recipe_support/train_options.py"
            assert rule.accepts(value), (name, path, value)


def test_bad_values_of_every_option_are_one_line_before_any_work(tmp_path: Path) -> None:
    cfg = compose_config("train", [f"output_dir={tmp_path / 'run'}"])
    raw = OmegaConf.to_container(cfg, resolve=False)
    cases = battery()
    assert len(cases) > 100
    for path, value in cases:
        OmegaConf.update(cfg, path, value, merge=False)
        with pytest.raises(RecipeError) as info:
            train.run(cfg, overrides=[])
        message = str(info.value)
        assert path in message and "\n" not in message, (path, value, message)
        assert not (tmp_path / "run").exists(), (path, value)
        original = raw
        for part in path.split("."):
            original = original[part]
        OmegaConf.update(cfg, path, original, merge=False)  # back to the default


@pytest.mark.parametrize("override", [
    "data.batch_size=0", "data.batch_size=-1", "checkpoint_every=0", "log_every=0",
    "num_threads=0", "keep_checkpoints=abc", "max_steps=abc", "resume=flase",
    "discriminator.periods=[]", "optimiser.lr_decay=0",
])
def test_command_line_values_from_the_issue(tmp_path: Path, override: str) -> None:
    cfg = compose_config("train", [f"output_dir={tmp_path / 'run'}", override])
    with pytest.raises(RecipeError, match=override.partition("=")[0]):
        train.run(cfg, overrides=[])
    assert not (tmp_path / "run").exists()
