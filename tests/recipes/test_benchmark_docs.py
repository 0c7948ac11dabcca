"""``docs.enabled=true``: recipes/benchmark.py writes its tables as Markdown, with provenance."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
from omegaconf import DictConfig

from recipe_support import compose_config, load_recipe

from upsampler.recipe_support.benchmarks.report import (
    HEADER_MARK,
    benchmarks_markdown,
    read_sections,
)
from upsampler.recipe_support.benchmarks.report_cells import sig
from upsampler.recipe_support.errors import RecipeError
from upsampler.recipe_support.provenance import command_line, cpu_name

benchmark = load_recipe("benchmark")
LAYERS_ONLY_OFF = ("hifigan_presets=[]", "extra_layers=[]", "mel_frames=[]")


def make_cfg(tmp_path: Path, docs: Path, *overrides: str) -> DictConfig:
    """The quick settings at 2 mel frames, V3's layers and a 16-wide streaming V3."""
    return compose_config("benchmark", [
        "quick=true", "progress=false", f"output_dir={tmp_path / 'run'}", "hifigan_presets=[v3]",
        "quick_settings.mel_frames=[2]", "streaming.presets=[v3]", "streaming.width=16",
        "docs.enabled=true", f"docs.output={docs}", *overrides,
    ])


def section(text: str, name: str) -> str:
    return read_sections(text)[name]


def test_run_writes_tables_with_provenance(tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    docs = tmp_path / "docs" / "benchmarks.md"
    monkeypatch.setattr(sys, "argv", ["recipes/benchmark.py", "docs.enabled=true"])
    benchmark.run(make_cfg(tmp_path, docs, "streaming.enabled=true"))
    text = docs.read_text()
    assert text.splitlines()[0] == HEADER_MARK
    assert set(read_sections(text)) == {"layers", "streaming"}  # what ran, nothing else
    layers = section(text, "layers")
    # the provenance line: command, date, torch, CPU and the run's threads (not the caller's)
    assert "Written by `python recipes/benchmark.py docs.enabled=true` on " in layers
    assert f"torch {torch.__version__}, {cpu_name()}, 2 thread(s)." in layers
    assert " Load average as it started: " in layers  # a busy machine shows in the times
    assert "| layer (C_in -> C_out, k, s) | 2 fr, B 1 |" in layers
    assert "| v3.ups0 256->128 k16 s8 | " in layers  # V3's first stage: 256 -> 128, k16, s8
    assert "| depthwise 256->256 k16 s8 g256 (not in the mean) | " in layers
    assert "Geometric mean over the HiFi-GAN shapes: **" in layers
    streaming = section(text, "streaming")
    assert "| v3 | offline | " in streaming and "| v3 | 8-frame chunks, eager | " in streaming
    assert [p.name for p in docs.parent.iterdir()] == ["benchmarks.md"]  # no temporary left


def test_rerun_of_one_section_keeps_the_others(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    docs = tmp_path / "benchmarks.md"
    benchmark.run(make_cfg(tmp_path, docs))
    layers_before = section(docs.read_text(), "layers")
    monkeypatch.setattr(sys, "argv", ["recipes/benchmark.py", "streaming.enabled=true"])
    benchmark.run(make_cfg(tmp_path, docs, *LAYERS_ONLY_OFF, "streaming.enabled=true"))
    after = docs.read_text()
    assert section(after, "layers") == layers_before  # not measured again: kept as it was
    assert "streaming.enabled=true" in section(after, "streaming")
    assert after.index("<!-- section: layers -->") < after.index("<!-- section: streaming -->")


def test_a_file_the_recipe_did_not_write_is_refused_before_any_work(tmp_path: Path) -> None:
    docs = tmp_path / "benchmarks.md"
    docs.write_text("# My own notes\n")
    with pytest.raises(RecipeError) as caught:
        benchmark.run(make_cfg(tmp_path, docs))
    message = str(caught.value)
    assert message.startswith(f"docs.output '{docs}' exists and was not written by the "
                              f"benchmark recipe") and "\n" not in message
    assert docs.read_text() == "# My own notes\n" and not (tmp_path / "run").exists()


def test_sections_round_trip_in_file_order() -> None:
    sections = {"streaming": "<!-- section: streaming -->\n## S\n\nrow\n",
                "layers": "<!-- section: layers -->\n## L\n\n| a |\n"}
    text = benchmarks_markdown(sections)
    assert read_sections(text) == sections
    assert text.index("## L") < text.index("## S")  # layers first, whatever the dict order


@pytest.mark.parametrize("value, expected", [
    (1234.5, "1234"), (446.2, "446"), (58.54, "58.5"), (0.05803, "0.0580"), (0.0, "0"),
    (None, "n/a"),
])
def test_times_have_three_significant_digits_without_exponent(value: float | None,
                                                              expected: str) -> None:
    assert sig(value) == expected


def test_recorded_command_leaves_out_where_the_run_wrote() -> None:
    """A docs file names the command that measured, not one machine's output folders."""
    argv = ["recipes/benchmark.py", "streaming.reps=15", "output_dir=/tmp/run a",
            "hydra.run.dir=/tmp/run a/hydra", "progress=false", "docs.enabled=true"]
    assert command_line(argv) == ("python recipes/benchmark.py streaming.reps=15 "
                                  "docs.enabled=true")
    # only those keys: a key that merely starts like one stays
    kept = command_line(["recipes/x.py", "output_dirs=[a]"])
    assert kept == "python recipes/x.py 'output_dirs=[a]'"
