"""recipes/study.py at a tiny budget on a fabricated corpus, and tonal tracking in training.

The study here trains two kinds of a 16-channel generator for a few steps: a test fixture
for the report's structure and the bookkeeping (resume, skip, determinism), not a study.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig

from recipe_support import compose_config, load_recipe
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
