"""recipes/study.py at a tiny budget on a fabricated corpus, and tonal tracking in training.

The study here trains two kinds of a 16-channel generator for a few steps: a test fixture
for the report's structure and the bookkeeping (resume, skip, determinism), not a study.
The same finished study shows the refusals: a rerun whose settings differ from what the runs
were made with is refused listing each change; every option (the battery of
``option_battery``, ``probes`` and each kind's train config) is checked before anything is
written; an unwritable output folder is one line.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig

from option_battery import battery, tree_state, with_value
from recipe_support import REPO, compose_config, load_recipe
from training_support import SAMPLE_RATE, one_thread, write_corpus  # noqa: F401 (a fixture)
from upsampler import BigVGANGenerator, HiFiGANGenerator
from upsampler.recipe_support.errors import RecipeError
from upsampler.training.artifacts import SILENCE_LOG_LEVEL, probe_mels, tonal_excess

TRAIN_FILES, HELD_OUT_FILES = 4, 2
STEPS, EVERY, WARMUP = 4, 2, 2
KINDS = ("transposed_ks1", "subpixel")

study = load_recipe("study")
pytestmark = pytest.mark.usefixtures("one_thread")  # the recipe sets the thread count


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_corpus(tmp_path_factory.mktemp("corpus"), TRAIN_FILES, HELD_OUT_FILES,
                        SAMPLE_RATE // 2)


TINY = [  # a 16-channel generator and two-channel discriminators: plumbing, not quality
    "model.upsample_initial_channel=16", "model.resblock_kernel_sizes=[3]",
    "model.resblock_dilation_sizes=[[1,3]]", "discriminator.periods=[2,3]",
    "discriminator.period_channels=[2,2,2,2,2]", "discriminator.scale_channels=[2,2,2,2,2,2,2]",
    "discriminator.scale_groups=[1,1,1,1,1,1,1]", "data.segment_length=1200", "log_every=1",
    "tensorboard=false",
]


def study_cfg(corpus: Path, output_dir: Path, *overrides: str) -> DictConfig:
    tiny = "[" + ",".join(f"'{item}'" for item in TINY) + "]"
    return compose_config("study", [
        f"corpus={corpus}", f"kinds=[{','.join(KINDS)}]", f"max_steps={STEPS}",
        f"warmup_steps={WARMUP}", f"validation_every={EVERY}", "validation_utterances=2",
        "batch_size=2", "num_threads=1", "workers=1", "progress=false", "probes.frames=48",
        f"output_dir={output_dir}", f"train_overrides={tiny}", *overrides,
    ])


@pytest.fixture(scope="module")
def finished(corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    output_dir = tmp_path_factory.mktemp("study")
    return output_dir, study.run(study_cfg(corpus, output_dir))


def test_tiny_study_writes_the_report(finished: tuple[Path, dict]) -> None:
    output_dir, result = finished
    report = output_dir / "report"
    figures = {path.name for path in (report / "figures").iterdir()}
    assert figures == {"tonal_constant_db.png", "tonal_noise_db.png", "stoi.png", "pesq.png",
                       "mel_l1.png", *(f"spectrum_{kind}.png" for kind in KINDS)}
    rows = json.loads((report / "study.json").read_text())["rows"]
    assert [row["kind"] for row in rows] == list(KINDS)
    for row in rows:
        assert row["steps"] == STEPS
        for key in ("tonal_constant_db_start", "tonal_constant_db", "tonal_noise_db_start",
                    "tonal_noise_db", "silence_excess_db", "constant_excess_db", "mel_l1"):
            assert math.isfinite(row[key]), key
        assert row["warmup_steps_per_second"] > 0 and row["adversarial_steps_per_second"] > 0
        assert row["minutes"] > 0
    table = (report / "study.md").read_text()
    assert len([line for line in table.splitlines() if line.startswith("| ")]) == 1 + len(KINDS)
    assert all(f"| {kind} | {STEPS} |" in table for kind in KINDS)
    assert not list(report.rglob(".*partial*"))  # nothing half-written left behind


def test_tonal_excess_logged_at_every_validation(finished: tuple[Path, dict]) -> None:
    output_dir, _ = finished
    for kind in KINDS:
        lines = (output_dir / "runs" / kind / "metrics.jsonl").read_text().splitlines()
        validations = [json.loads(line) for line in lines if '"validation"' in line]
        assert [v["step"] for v in validations] == list(range(0, STEPS + 1, EVERY))
        for record in validations:
            assert math.isfinite(record["tonal_constant_db"])
            assert math.isfinite(record["tonal_noise_db"])


def test_rerun_skips_finished_kinds(corpus: Path, finished: tuple[Path, dict]) -> None:
    output_dir, _ = finished
    weights = output_dir / "runs" / KINDS[0] / f"g_{STEPS:08d}"
    stamp = weights.stat().st_mtime_ns
    result = study.run(study_cfg(corpus, output_dir))
    assert weights.stat().st_mtime_ns == stamp  # not retrained
    assert [row["kind"] for row in result["rows"]] == list(KINDS)


def assert_same_final_weights(first_dir: Path, second_dir: Path, kind: str = KINDS[0]) -> None:
    name = f"runs/{kind}/g_{STEPS:08d}"
    first = torch.load(first_dir / name, weights_only=True)["generator"]
    second = torch.load(second_dir / name, weights_only=True)["generator"]
    assert first.keys() == second.keys()
    assert all(torch.equal(first[key], second[key]) for key in first)


def test_same_seed_and_budget_give_the_same_weights_in_worker_processes(
        corpus: Path, finished: tuple[Path, dict], tmp_path: Path) -> None:
    """Two kinds at once, each in a spawned process, train to the sequential run's weights."""
    output_dir, _ = finished
    result = study.run(study_cfg(corpus, tmp_path, "workers=2"))
    assert [row["kind"] for row in result["rows"]] == list(KINDS)
    for kind in KINDS:
        assert_same_final_weights(output_dir, tmp_path, kind)


def test_unfinished_kind_continues_to_the_same_weights(corpus: Path,
                                                       finished: tuple[Path, dict],
                                                       tmp_path: Path) -> None:
    output_dir, _ = finished
    study.run(study_cfg(corpus, tmp_path, f"kinds=[{KINDS[0]}]", f"max_steps={STEPS - 1}"))
    result = study.run(study_cfg(corpus, tmp_path, f"kinds=[{KINDS[0]}]"))
    assert result["rows"][0]["steps"] == STEPS
    assert result["steps"] == {KINDS[0]: STEPS}  # a grown budget: labelled with the new step
    assert f"1 kinds, {STEPS} steps each" in (tmp_path / "report" / "study.md").read_text()
    assert_same_final_weights(output_dir, tmp_path)


def test_every_variant_builds_the_demo_rates(corpus: Path, tmp_path: Path) -> None:
    cfg = study_cfg(corpus, tmp_path)
    for kind in cfg.variants:
        model_cfg = study.compose_train(study.train_overrides(cfg, kind, tmp_path)).model
        generator = instantiate(model_cfg)
        assert tuple(generator.upsample_rates) == (5, 5, 4, 2), kind
        if kind == "transposed_ks1":  # k = s + 1, a kernel not a multiple of its stride
            assert tuple(generator.upsample_kernel_sizes) == (6, 6, 5, 3)
        elif kind == "bigvgan_aa":
            assert isinstance(generator, BigVGANGenerator) and generator.anti_alias
        else:
            assert isinstance(generator, HiFiGANGenerator)
            assert tuple(generator.upsample_kernel_sizes) == (10, 10, 8, 4)


@pytest.mark.parametrize("override, field", [
    ("kinds=[transposed_k2s,sinc]", "kinds"), ("max_steps=0", "max_steps"),
    ("warmup_steps=9", "warmup_steps"), ("corpus=/nonexistent/corpus", "corpus"),
])
def test_bad_input_is_one_line_naming_the_field(corpus: Path, tmp_path: Path, override: str,
                                                field: str) -> None:
    with pytest.raises(RecipeError, match=f"^{field} ") as error:
        study.run(study_cfg(corpus, tmp_path, override))
    assert "\n" not in str(error.value)
    assert not (tmp_path / "runs").exists()


def test_transposed_tones_exceed_resize_tones() -> None:
    """At initialisation the tonal measure separates the kinds as the analysis does."""
    found = {}
    for kind in ("transposed", "nearest_conv"):
        torch.manual_seed(0)
        generator = HiFiGANGenerator(upsample_rates=[5, 5, 4, 2],
                                     upsample_kernel_sizes=[10, 10, 8, 4],
                                     upsample_initial_channel=32, resblock="2",
                                     resblock_kernel_sizes=[3], resblock_dilation_sizes=[[1, 3]],
                                     upsampler=kind)
        found[kind] = tonal_excess(generator, SAMPLE_RATE)
        assert generator.training  # the mode is restored
    assert found["transposed"]["tonal_constant_db"] > found["nearest_conv"]["tonal_constant_db"]


def test_silence_probe_is_log_of_the_clamp() -> None:
    mels = probe_mels(80, 10)
    assert torch.allclose(mels["silence"], torch.full((80, 10), math.log(1e-5)))
    assert SILENCE_LOG_LEVEL == pytest.approx(-11.5129, abs=1e-4)
    assert mels["constant"].min() > SILENCE_LOG_LEVEL


def refused(cfg: object) -> str:
    """The one-line ``RecipeError`` message of ``study.run(cfg)``."""
    with pytest.raises(RecipeError) as caught:
        study.run(cfg)
    message = str(caught.value)
    assert "\n" not in message
    return message


# Issue 21 item 9: the report never claims settings its rows were not made with.

@pytest.mark.parametrize("overrides, changes", [
    (["batch_size=3"], ["batch_size: 2 -> 3"]),
    (["seed=7", "batch_size=3", "warmup_steps=1"],
     ["batch_size: 2 -> 3", "seed: 1234 -> 7", "warmup_steps: 2 -> 1"]),
    (["validation_utterances=1"], ["validation_utterances: 2 -> 1"]),
])
def test_rerun_with_other_settings_is_refused_listing_each_change(
        corpus: Path, finished: tuple[Path, dict], overrides: list[str],
        changes: list[str]) -> None:
    output_dir, _ = finished
    before = tree_state(output_dir)
    message = refused(study_cfg(corpus, output_dir, *overrides))
    assert message.startswith(f"output_dir '{output_dir}' holds a study made with other "
                              f"settings ("), message
    for change in changes:
        assert change in message, message
    assert tree_state(output_dir) == before  # report and runs as they were


def test_rerun_with_a_smaller_budget_is_refused_not_relabelled(
        corpus: Path, finished: tuple[Path, dict]) -> None:
    """The reproduction: rows at step 4 were labelled "2 steps each" by a max_steps=2 rerun."""
    output_dir, _ = finished
    before = tree_state(output_dir)
    message = refused(study_cfg(corpus, output_dir, "max_steps=2"))
    assert message.startswith("max_steps must be at least the step the runs in"), message
    assert all(f"{kind} at step {STEPS}" in message for kind in KINDS), message
    assert tree_state(output_dir) == before
    assert f"{STEPS} steps each" in (output_dir / "report" / "study.md").read_text()


def test_report_states_the_settings_and_steps_the_runs_recorded(
        finished: tuple[Path, dict]) -> None:
    output_dir, result = finished
    assert result["steps"] == {kind: STEPS for kind in KINDS}
    settings = json.loads((output_dir / study.SETTINGS_FILE).read_text())
    assert {key: settings[key] for key in ("batch_size", "seed", "warmup_steps")} == {
        "batch_size": 2, "seed": 1234, "warmup_steps": 2}
    assert set(settings["variants"]) == set(KINDS)
    header = (output_dir / "report" / "study.md").read_text().split("\n\n")[1]
    assert header.startswith(f"{len(KINDS)} kinds, {STEPS} steps each (discriminators from "
                             f"step 2), batch 2, seed 1234, 1 worker(s) of 1 thread(s), 2 "
                             f"held-out utterances"), header


def test_steps_label_names_each_kind_where_they_differ() -> None:
    assert study.steps_label({"a": 4, "b": 4}) == "4 steps each"
    assert study.steps_label({"a": 4, "b": 6}) == "steps reached: a 4, b 6"


def test_folder_without_settings_is_checked_against_the_runs_records(
        corpus: Path, finished: tuple[Path, dict], tmp_path: Path) -> None:
    """A study folder made before study_settings.json: each run's config.json decides."""
    output_dir, _ = finished
    old = tmp_path / "old"
    shutil.copytree(output_dir, old)
    (old / study.SETTINGS_FILE).unlink()
    message = refused(study_cfg(corpus, old, "seed=9"))
    assert all(f"runs/{kind} seed: 1234 -> 9" in message for kind in KINDS), message
    assert not (old / study.SETTINGS_FILE).exists()


# Issue 21 item 16: every option is checked before any training.

ALLOWED = {"seed=0", "warmup_steps=0"}  # any seed >= 0; spectral losses alone never


def test_every_bad_option_is_one_line_before_any_work(
        corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each option of configs/study.yaml (groups aside) given a wrong type, 0, -1 or nothing
    is refused naming it; nothing is trained and no file or folder appears."""
    monkeypatch.chdir(tmp_path)  # a relative path that slipped through would land here
    base = study_cfg(corpus, tmp_path / "out")
    cases = [case for case in battery(base) if case[1] not in ALLOWED]
    assert {option for option, _, _ in cases} == {
        "corpus", "kinds", "max_steps", "warmup_steps", "validation_every",
        "validation_utterances", "batch_size", "seed", "deterministic", "num_threads",
        "workers", "progress", "train_overrides", "output_dir"}
    for option, override, value in cases:
        message = refused(with_value(base, option, value))
        assert message.startswith(f"{option} must be "), (override, message)
        assert tree_state(tmp_path) == {}, override


@pytest.mark.parametrize("override, message", [
    ("probes.speech_utterance=2", "probes.speech_utterance must be an index into "
                                  "validation.txt's 2 utterances (0 to 1), got 2"),
    ("probes.speech_utterance=-1", "probes.speech_utterance must be an integer >= 0, got -1"),
    ("probes.speech_utterance=abc", "probes.speech_utterance must be an integer >= 0, got 'abc'"),
    ("probes.frames=39", "probes.frames must be an integer >= 40 (the probe spectrum of hop "
                         "200), got 39"),
    ("probes.frames=0", "probes.frames must be an integer >= 1, got 0"),
    ("train_overrides=['data.batch_size=abc']",
     "kind transposed_ks1: data.batch_size must be a positive integer, got 'abc'"),
    ("train_overrides=['no_such_option=1']", "kind transposed_ks1: its recipes/train.py "
                                             "overrides (variants.transposed_ks1 and "
                                             "train_overrides) do not compose: "),
    ("variants.subpixel=['upsampler=sinc']", "kind subpixel: its recipes/train.py overrides"),
])
def test_probes_and_train_overrides_are_checked_before_training(
        corpus: Path, tmp_path: Path, override: str, message: str) -> None:
    found = refused(study_cfg(corpus, tmp_path / "out", override))
    assert found.startswith(message), found
    assert tree_state(tmp_path) == {}


def test_train_overrides_keep_their_types_and_paths(corpus: Path, tmp_path: Path) -> None:
    """num_threads=null reaches train as null (not the string 'None'); a run folder whose
    path holds a space, a comma and a quote stays one path."""
    run_dir = tmp_path / "a b,c'd" / "runs" / KINDS[0]
    cfg = study_cfg(corpus, tmp_path, "num_threads=null")
    train_cfg = study.compose_train(study.train_overrides(cfg, KINDS[0], run_dir))
    assert train_cfg.num_threads is None
    assert train_cfg.output_dir == str(run_dir)
    assert train_cfg.deterministic is True and train_cfg.max_minutes is None
    study.check_kinds(cfg, tmp_path)  # train's own checks accept them


# Issue 21 item 12 (the study's part): an unwritable output folder is one line.

def test_output_dir_below_a_file_is_one_line_before_any_work(corpus: Path,
                                                             tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    message = refused(study_cfg(corpus, blocker / "study"))
    assert message.startswith(f"output_dir '{blocker / 'study'}' is not writable ("), message
    assert tree_state(tmp_path) == {"file": tree_state(tmp_path)["file"]}


def test_command_line_run_dir_below_a_file_is_one_line(tmp_path: Path) -> None:
    """hydra.run.dir below a regular file: exit 1 with one line, not Hydra's traceback."""
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, str(REPO / "recipes" / "study.py"), f"hydra.run.dir={blocker}/study"],
        capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path)
    assert result.returncode == 1, result.stderr[-2000:]
    assert "Traceback" not in result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "hydra.run.dir=" in lines[0] and "cannot be created" in lines[0]
    assert sorted(path.name for path in tmp_path.iterdir()) == ["file"]
