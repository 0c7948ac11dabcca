"""recipes/train.py with a tiny generator and tiny discriminators on a fabricated corpus.

Exact resume (N steps, stop, resume M == N + M at once), a run killed while writing a
checkpoint, bad inputs (one-line errors, nothing half-written), and the recipe run as a
user runs it (subprocess, exit status, files on disk).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from omegaconf import DictConfig

from recipe_support import REPO, compose_config, load_recipe
from training_support import one_thread, write_corpus  # noqa: F401 (a fixture)
from upsampler import load_hifigan
from upsampler.recipe_support.errors import RecipeError

SAMPLE_RATE, HOP = 16000, 200  # configs/audio/16k_hop200.yaml
TRAIN_FILES, HELD_OUT_FILES = 6, 2
BATCH = 2  # 6 files / 2 = 3 steps per epoch: the runs below cross epoch boundaries

train = load_recipe("train")
pytestmark = pytest.mark.usefixtures("one_thread")  # the recipe sets the thread count
# the subprocesses import this checkout's package, wherever the test runs from
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(
    [str(REPO / "src"), *filter(None, [os.environ.get("PYTHONPATH")])])}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_corpus(tmp_path_factory.mktemp("corpus"), TRAIN_FILES, HELD_OUT_FILES,
                        SAMPLE_RATE // 4)


def tiny_overrides(corpus: Path, output_dir: Path) -> list[str]:
    return [
        "audio=16k_hop200", "model=debug", "discriminator.periods=[2,3]",
        "discriminator.period_channels=[2,2,2,2,2]",
        "discriminator.scale_channels=[2,2,2,2,2,2,2]", "discriminator.scale_groups=[1,1,1,1,1,1,1]",
        f"data.train_list={corpus / 'training.txt'}", f"data.wav_dir={corpus / 'wavs'}",
        "data.segment_length=1200", f"data.batch_size={BATCH}", "warmup_steps=2",
        "validation_every=null", "checkpoint_every=2", "keep_checkpoints=null", "log_every=1",
        "deterministic=true", "num_threads=1", "progress=false", "tensorboard=false", f"output_dir={output_dir}",
    ]


def make_cfg(corpus: Path, output_dir: Path, *overrides: str) -> DictConfig:
    return compose_config("train", [*tiny_overrides(corpus, output_dir), *overrides])


def generator_weights(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, map_location="cpu", weights_only=True)["generator"]


def assert_same_weights(a: Path, b: Path) -> None:
    first, second = generator_weights(a), generator_weights(b)
    assert first.keys() == second.keys()
    for key in first:
        assert torch.equal(first[key], second[key]), key


def test_resume_equals_uninterrupted_run(corpus: Path, tmp_path: Path) -> None:
    whole, split = tmp_path / "whole", tmp_path / "split"
    train.run(make_cfg(corpus, whole, "max_steps=7"))
    train.run(make_cfg(corpus, split, "max_steps=4"))  # stops mid-epoch, after the warm-up
    assert (split / "do_00000004").is_file() and not (split / "g_00000006").exists()
    result = train.run(make_cfg(corpus, split, "max_steps=7", "resume=true"))
    assert result["step"] == 7
    assert_same_weights(whole / "g_00000007", split / "g_00000007")
    whole_state = torch.load(whole / "do_00000007", weights_only=True)
    split_state = torch.load(split / "do_00000007", weights_only=True)
    for part in ("mpd", "msd"):
        for key, value in whole_state[part].items():
            assert torch.equal(value, split_state[part][key]), (part, key)
    assert (whole_state["epoch"], whole_state["batch_in_epoch"]) == (2, 1)  # 7 = 3 + 3 + 1
    lines = [json.loads(line) for line in (split / "metrics.jsonl").read_text().splitlines()]
    assert [line["step"] for line in lines] == list(range(1, 8))


def test_killed_while_writing_resumes_from_last_complete_pair(corpus: Path,
                                                              tmp_path: Path) -> None:
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    train.run(make_cfg(corpus, whole, "max_steps=6"))
    train.run(make_cfg(corpus, killed, "max_steps=4"))
    # the pair at step 4 was being written: its g is in place, its do still a temporary file
    (killed / "do_00000004").rename(killed / ".do_00000004.partial-1-abc123")
    result = train.run(make_cfg(corpus, killed, "max_steps=6", "resume=true"))
    assert result["step"] == 6
    assert_same_weights(whole / "g_00000006", killed / "g_00000006")
    assert not list(killed.glob(".*.partial-*"))  # the next save removed the stale temporary file
    assert sorted(p.name for p in killed.glob("g_*")) == ["g_00000002", "g_00000004",
                                                          "g_00000006"]


def test_checkpoint_loads_with_load_hifigan_and_vocode(corpus: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    train.run(make_cfg(corpus, run_dir, "max_steps=2", "keep_checkpoints=1"))
    assert sorted(p.name for p in run_dir.glob("[gd]*_*")) == ["do_00000002", "g_00000002"]
    config = json.loads((run_dir / "config.json").read_text())
    assert (config["sampling_rate"], config["hop_size"], config["num_mels"]) == (16000, 200, 80)
    assert set(config) >= {"n_fft", "win_size", "fmin", "fmax", "upsample_rates", "resblock"}
    generator = load_hifigan(run_dir / "g_00000002", config=run_dir / "config.json")
    saved = generator_weights(run_dir / "g_00000002")
    assert any(key.endswith("weight_g") for key in saved)  # the original weight-norm names
    assert generator(torch.zeros(1, 80, 3)).shape == (1, 1, 3 * HOP)
    vocoded = tmp_path / "vocoded"
    completed = subprocess.run(
        [sys.executable, str(REPO / "recipes" / "vocode.py"), f"checkpoint={run_dir / 'g_00000002'}",
         f"model_config={run_dir / 'config.json'}", "audio=16k_hop200", "figures=false",
         "progress=false", f"hydra.run.dir={vocoded}"],
        capture_output=True, text=True, cwd=tmp_path, timeout=300, env=ENV,
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert json.loads((vocoded / "summary.json").read_text())["trained"] is True


def test_losses_decrease_on_the_corpus(corpus: Path, tmp_path: Path) -> None:
    result = train.run(make_cfg(corpus, tmp_path / "run", "max_steps=12", "warmup_steps=100",
                                "optimiser.learning_rate=0.002"))
    lines = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text()
             .splitlines()]
    mel = [line["mel"] for line in lines]
    assert result["step"] == 12 and all(np.isfinite(mel))
    assert np.mean(mel[-3:]) < np.mean(mel[:3])


# the fabricated utterances are shorter than STOI's 30 frames of 384 ms: pystoi says so
@pytest.mark.filterwarnings("ignore:Not enough STFT frames")
def test_validation_metrics_logged(corpus: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    result = train.run(make_cfg(corpus, run_dir, "max_steps=2", "validation_every=2",
                                f"data.validation_list={corpus / 'validation.txt'}"))
    assert result["validation"]["utterances"] == HELD_OUT_FILES
    assert np.isfinite(result["validation"]["mel_l1"]) and result["validation"]["stft"] > 0
    kinds = [json.loads(line)["kind"] for line in (run_dir / "metrics.jsonl").read_text()
             .splitlines()]
    assert kinds.count("validation") == 1


def test_existing_run_without_resume_is_refused(corpus: Path, tmp_path: Path) -> None:
    train.run(make_cfg(corpus, tmp_path, "max_steps=2"))
    with pytest.raises(RecipeError, match="resume=true"):
        train.run(make_cfg(corpus, tmp_path, "max_steps=4"))


def test_other_architecture_checkpoint_is_one_line(corpus: Path, tmp_path: Path) -> None:
    train.run(make_cfg(corpus, tmp_path, "max_steps=2"))
    with pytest.raises(RecipeError, match="another generator architecture") as info:
        train.run(make_cfg(corpus, tmp_path, "max_steps=4", "resume=true",
                           "model.upsample_initial_channel=32",
                           "resume_changes=[model.upsample_initial_channel]"))
    assert "\n" not in str(info.value)


def test_non_finite_loss_names_step_and_keeps_last_checkpoint(
    corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_step = train.Trainer.train_step

    def poisoned(self: train.Trainer, mel: torch.Tensor, wav: torch.Tensor) -> dict:
        if self.step == 2:  # the third step: its generator loss becomes NaN
            self.weights.mel = float("nan")
        return real_step(self, mel, wav)

    monkeypatch.setattr(train.Trainer, "train_step", poisoned)
    with pytest.raises(RecipeError, match="step 3") as info:
        train.run(make_cfg(corpus, tmp_path, "max_steps=5"))
    assert "The last complete checkpoint pair is step 2 in " in str(info.value)
    assert sorted(p.name for p in tmp_path.glob("[gd]*_*")) == ["do_00000002", "g_00000002"]
    assert not list(tmp_path.glob(".*.partial-*"))


@pytest.mark.parametrize("problem", ["missing", "empty", "no_wav", "corrupt"])
def test_bad_data_folder_is_one_line(tmp_path: Path, problem: str) -> None:
    folder = tmp_path / "data"
    if problem != "missing":
        folder.mkdir()
    if problem == "no_wav":
        (folder / "notes.txt").write_text("no audio here")
    if problem == "corrupt":
        (folder / "broken.wav").write_bytes(b"RIFF not really a wav")
    cfg = make_cfg(tmp_path, tmp_path / "run", "max_steps=2", "data.train_list=null",
                   f"data.wav_dir={folder}")
    with pytest.raises(RecipeError) as info:
        train.run(cfg)
    assert "\n" not in str(info.value) and str(folder) in str(info.value)
    assert not list((tmp_path / "run").glob("*_0*"))


def test_short_file_is_padded_with_named_warning(corpus: Path, tmp_path: Path) -> None:
    with pytest.warns(UserWarning, match="shorter than segment_length"):
        train.run(make_cfg(corpus, tmp_path, "max_steps=1", "data.segment_length=8000"))
    assert (tmp_path / "g_00000001").is_file()


def test_recipe_as_a_user_runs_it(corpus: Path, tmp_path: Path) -> None:
    command = [sys.executable, str(REPO / "recipes" / "train.py"),
               *[o for o in tiny_overrides(corpus, tmp_path) if not o.startswith("output_dir")],
               f"hydra.run.dir={tmp_path / 'run'}"]
    first = subprocess.run([*command, "max_steps=3"], capture_output=True, text=True,
                           cwd=tmp_path, timeout=300, env=ENV)
    assert first.returncode == 0, first.stderr[-2000:]
    run_dir = tmp_path / "run"
    assert {"g_00000002", "do_00000002", "g_00000003", "do_00000003", "config.json",
            "metrics.jsonl"} <= {p.name for p in run_dir.iterdir()}
    refused = subprocess.run([*command, "max_steps=5"], capture_output=True, text=True,
                             cwd=tmp_path, timeout=300, env=ENV)
    assert refused.returncode == 1
    output = refused.stdout + refused.stderr
    errors = [line for line in output.splitlines() if "[ERROR]" in line]
    assert len(errors) == 1 and "resume=true" in errors[0] and "Traceback" not in output
    assert not (run_dir / "g_00000004").exists()
