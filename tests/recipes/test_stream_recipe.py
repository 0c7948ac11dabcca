"""recipes/stream.py: real-time figures per (preset, runtime, chunk), in stream.json and the docs.

One run of a 16-wide V3 on both runtimes (its two exported steps take most of this file's
time; V1's take twice as long) is shared by the first tests; the rest run eager only, or
nothing at all. One thread: on a machine shared with other work, two threads of torch's
pool waiting on each other make the eager stream's small ops many times slower.
"""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import torch
from omegaconf import DictConfig

from recipe_support import compose_config, load_recipe

from upsampler import StreamingGenerator
from upsampler.recipe_support.benchmarks.realtime import Schedule, feed, summary
from upsampler.recipe_support.benchmarks.stream_report import HEADINGS, STREAM_MARK
from upsampler.recipe_support.errors import RecipeError
from upsampler.recipe_support.provenance import cpu_name

stream = load_recipe("stream")
QUICK = ["width=16", "mel_frames=16", "chunk_frames=[1,4]", "realtime=false", "offline_reps=1",
         "num_threads=1", "docs.enabled=true"]
HOP, SAMPLE_RATE = 256, 22050  # HiFi-GAN V1 and V3 at 22.05 kHz
V1_LOOK_AHEAD, V3_LOOK_AHEAD = 13, 11  # frames: each one's right context over its hop
METRICS = ("chunk_ms", "latency_ms", "p50_ms", "p99_ms", "max_ms", "flush_ms",
           "compute_per_audio_second")


def quick(root: Path, *overrides: str) -> DictConfig:
    return compose_config("stream", [*QUICK, f"output_dir={root / 'run'}",
                                     f"docs.output={root / 'docs' / 'streaming.md'}", *overrides])


def rows_of(results: dict[str, Any]) -> list[dict[str, Any]]:
    return [row for preset in results["presets"] for row in preset["rows"]]


def table_rows(text: str) -> list[str]:
    return [line for line in text.splitlines()
            if line.startswith("| ") and not line.startswith("| runtime |")]


@pytest.fixture(scope="module")
def v3_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any], str]:
    """The quick settings on V3, eager and onnx: the run folder, results and docs text."""
    pytest.importorskip("onnxruntime")
    root = tmp_path_factory.mktemp("stream")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sys, "argv", ["recipes/stream.py", *QUICK, "presets=[v3]"])
        results = stream.run(quick(root, "presets=[v3]"))
    return root, results, (root / "docs" / "streaming.md").read_text()


def test_docs_name_the_command_and_hold_one_row_per_runtime_and_chunk(v3_run) -> None:
    root, _, text = v3_run
    assert text.splitlines()[0] == STREAM_MARK
    assert ("Written by `python recipes/stream.py width=16 mel_frames=16 'chunk_frames=[1,4]' "
            "realtime=false offline_reps=1 num_threads=1 docs.enabled=true 'presets=[v3]'` "
            "on ") in text
    assert f"torch {torch.__version__}, {cpu_name()}, 1 thread(s)." in text
    assert "| " + " | ".join(HEADINGS) + " |" in text
    assert [row.split(" | ")[:2] for row in table_rows(text)] == [
        ["| eager", "1"], ["| eager", "4"], ["| onnx", "1"], ["| onnx", "4"]]
    assert "**deadline misses**" in text and "Offline `generator(mel)`" in text
    # the exported steps lived in a temporary folder of the run; the docs folder holds the file
    assert sorted(p.name for p in (root / "run").iterdir()) == ["stream.json"]
    assert [p.name for p in (root / "docs").iterdir()] == ["streaming.md"]


def test_figures_are_finite_and_positive_with_p99_at_least_p50(v3_run) -> None:
    _, results, _ = v3_run
    for row in rows_of(results):
        for key in METRICS:
            assert math.isfinite(row[key]) and row[key] > 0, (row["runtime"], key, row[key])
        assert row["p99_ms"] >= row["p50_ms"]
        assert row["chunks"] == math.ceil(16 / row["chunk_frames"])
        assert 0 <= row["misses"] <= row["chunks"] and row["max_abs_diff"] <= 1e-4
        # the same model streams: eager and exported latencies agree
        assert row["latency_ms"] == pytest.approx(
            (V3_LOOK_AHEAD + row["chunk_frames"]) * HOP / SAMPLE_RATE * 1000)
    assert results["presets"][0]["offline_per_audio_second"] > 0


def test_one_table_per_preset_and_v1_latency_is_look_ahead_plus_chunk(tmp_path: Path) -> None:
    """Eager at real-time pace. Hand-worked V1: (13 + 1) * 256 / 22050 s = 162.5 ms,
    (13 + 4) * 256 / 22050 s = 197.4 ms."""
    results = stream.run(quick(tmp_path, "runtimes=[eager]", "realtime=true"))
    text = (tmp_path / "docs" / "streaming.md").read_text()
    assert "## HiFi-GAN V1 (width 16, look-ahead 13 frames)" in text
    assert "## HiFi-GAN V3 (width 16, look-ahead 11 frames)" in text
    assert len(table_rows(text)) == 4 and "fed at real-time pace" in text
    assert [(row["preset"], row["chunk_frames"]) for row in rows_of(results)] == [
        ("v1", 1), ("v1", 4), ("v3", 1), ("v3", 4)]
    session = StreamingGenerator(stream.build("v1", 16, 0), SAMPLE_RATE)
    assert session.look_ahead_frames == V1_LOOK_AHEAD
    v1_rows = results["presets"][0]["rows"]
    assert [row["latency_ms"] for row in v1_rows] == pytest.approx([162.5397, 197.3696],
                                                                   abs=1e-3)
    assert "| eager | 1 | 11.6 | 163 | " in text and "| eager | 4 | 46.4 | 197 | " in text


@pytest.mark.parametrize("override, message", [
    ("chunk_frames=[0]",
     "chunk_frames must be a non-empty list of positive integers, each once, got [0]"),
    ("runtimes=[tflite]", "runtimes must be a non-empty list of names among ['eager', 'onnx'], "
                          "each once, got ['tflite']"),
    ("presets=[v1,v1]", "presets must be a non-empty list of names among ['v1', 'v2', 'v3'], "
                        "each once, got ['v1', 'v1']"),
    ("mel_frames=abc", "mel_frames must be a positive integer, got 'abc'"),
])
def test_a_bad_option_is_one_line_naming_it(override: str, message: str, tmp_path: Path) -> None:
    with pytest.raises(RecipeError) as caught:
        stream.run(quick(tmp_path, override))
    assert str(caught.value) == message
    assert list(tmp_path.iterdir()) == []


def test_a_docs_file_the_recipe_did_not_write_is_refused(tmp_path: Path) -> None:
    docs = tmp_path / "docs" / "streaming.md"
    docs.parent.mkdir()
    docs.write_text("# My own notes\n")
    with pytest.raises(RecipeError) as caught:
        stream.run(quick(tmp_path))
    assert str(caught.value).startswith(f"docs.output '{docs}' exists and was not written by "
                                        f"the stream recipe")
    assert docs.read_text() == "# My own notes\n" and not (tmp_path / "run").exists()


@pytest.mark.parametrize("realtime", [False, True])
def test_late_chunks_miss_on_the_wall_clock_and_the_simulated_one_alike(realtime: bool) -> None:
    """Chunks of 0.1 s; the first takes 0.25 s: it and the one queued behind it are late,
    the third (fed at 0.26 s, done by 0.27 s, due at 0.3 s) is not."""
    schedule = Schedule.of(mel_frames=3, chunk_frames=1, hop_length=100, sample_rate=1000)
    durations = iter([0.25, 0.01, 0.01])
    result = feed(lambda piece: time.sleep(next(durations)), lambda: None, [0, 1, 2],
                  schedule, realtime)
    found = summary(result, schedule, audio_seconds=0.3)
    assert schedule.deadlines == pytest.approx([0.1, 0.2, 0.3])
    assert found["misses"] == 2 and found["miss_percent"] == pytest.approx(200 / 3)
    assert found["p99_ms"] >= found["p50_ms"] >= 10
