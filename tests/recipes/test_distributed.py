"""Batch helpers (sharding, atomic writes, resumable records) and vocode under torchrun."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from recipe_support import REPO
from upsampler.recipe_support.errors import one_line
from upsampler._atomic import atomic_write_text, write_json
from upsampler.analysis.figures import save_png
from upsampler.recipe_support.records import RunRecords, find_inputs, output_names, shard

NUM_MELS = 80
HOP = 256


@pytest.mark.parametrize("num_items, world_size", [(0, 1), (5, 1), (5, 2), (7, 3), (2, 4)])
def test_shards_are_disjoint_and_cover_every_item(num_items: int, world_size: int) -> None:
    items = [f"file{i}" for i in range(num_items)]
    shares = [shard(items, rank, world_size) for rank in range(world_size)]
    flat = [item for share in shares for item in share]
    assert sorted(flat) == sorted(items)
    assert len(flat) == len(set(flat))


def test_shard_hand_worked_split() -> None:
    assert shard(list("abcde"), 0, 2) == ["a", "c", "e"]
    assert shard(list("abcde"), 1, 2) == ["b", "d"]


@pytest.mark.parametrize("rank, world_size", [(2, 2), (-1, 2), (0, 0)])
def test_shard_rejects_bad_rank(rank: int, world_size: int) -> None:
    with pytest.raises(ValueError, match="rank|world_size"):
        shard(["a"], rank, world_size)


def test_atomic_write_leaves_no_temporary_file(tmp_path: Path) -> None:
    target = write_json(tmp_path / "sub" / "x.json", {"a": 1})
    assert json.loads(target.read_text()) == {"a": 1}
    atomic_write_text(target, "second")
    assert target.read_text() == "second"
    assert sorted(p.name for p in target.parent.iterdir()) == ["x.json"]


def test_save_png_writes_a_png_and_no_temporary_file(tmp_path: Path) -> None:
    from matplotlib.figure import Figure

    figure = Figure()
    figure.add_subplot().plot([0, 1], [1, 0])
    target = save_png(figure, tmp_path / "figs" / "line.png")
    assert target.read_bytes()[:4] == b"\x89PNG"
    assert [p.name for p in target.parent.iterdir()] == ["line.png"]


def test_find_inputs_sorts_and_filters(tmp_path: Path) -> None:
    for name in ["b.wav", "a.npy", "sub/c.pt", "notes.txt"]:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    found = find_inputs(tmp_path)
    assert [p.relative_to(tmp_path).as_posix() for p in found] == ["a.npy", "b.wav", "sub/c.pt"]
    assert output_names(found, tmp_path) == ["a.wav", "b.wav", "sub/c.wav"]


def test_find_inputs_leaves_out_the_run_s_own_output_folder(tmp_path: Path) -> None:
    for name in ["a.wav", "out/a.wav", "out/.a.tmp.wav"]:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    assert find_inputs(tmp_path, exclude=tmp_path / "out") == [tmp_path / "a.wav"]


def test_find_inputs_errors_name_the_path(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="missing"):
        find_inputs(tmp_path / "missing")
    (tmp_path / "x.txt").write_text("")
    with pytest.raises(ValueError, match="x.txt"):
        find_inputs(tmp_path / "x.txt")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match="no file"):
        find_inputs(empty)


def test_output_names_of_a_home_relative_input_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "clips" / "sub").mkdir(parents=True)
    for name in ("a.wav", "sub/b.npy"):
        (tmp_path / "clips" / name).touch()
    assert output_names(find_inputs("~/clips"), "~/clips") == ["a.wav", "sub/b.wav"]


def test_output_names_reject_collisions(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="a.wav"):
        output_names([tmp_path / "a.npy", tmp_path / "a.pt"], tmp_path)


def test_records_resume_and_summary(tmp_path: Path) -> None:
    records = RunRecords(tmp_path)
    assert not records.is_done("a.wav")
    (tmp_path / "a.wav").write_bytes(b"RIFF")
    records.mark_done("a.wav", {"output": "a.wav", "samples": 3})
    records.mark_failed("b.wav", "in/b.npy", "ValueError: bad shape")
    assert records.is_done("a.wav") and not records.is_done("b.wav")
    summary = records.summary(["a.wav", "b.wav", "c.wav"])
    assert summary == {
        "files": [{"output": "a.wav", "samples": 3}],
        "failures": [{"input": "in/b.npy", "output": "b.wav", "error": "ValueError: bad shape",
                      "wrote": []}],
        "missing": ["c.wav"],
    }
    (tmp_path / "b.wav").write_bytes(b"RIFF")
    records.mark_done("b.wav", {"output": "b.wav"})  # a later success clears the failure
    assert records.summary(["b.wav"])["failures"] == []


def test_done_record_without_its_output_is_redone(tmp_path: Path) -> None:
    records = RunRecords(tmp_path)
    records.mark_done("gone.wav", {"output": "gone.wav"})
    assert not records.is_done("gone.wav")


def test_output_without_its_record_is_redone(tmp_path: Path) -> None:
    # killed after the wav's rename but before its record: the wav is whole but unconfirmed
    (tmp_path / "cut.wav").write_bytes(b"RIFF")
    assert not RunRecords(tmp_path).is_done("cut.wav")


def test_one_line_flattens_multiline_messages() -> None:
    assert one_line(ValueError("bad\n  shape")) == "ValueError: bad shape"


def test_torchrun_two_ranks_vocode_every_file_once(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    inputs = tmp_path / "mels"
    inputs.mkdir()
    frames = {f"m{i}": 3 + i for i in range(5)}
    for stem, length in frames.items():
        np.save(inputs / f"{stem}.npy", rng.standard_normal((NUM_MELS, length)).astype(np.float32))
    np.save(inputs / "zbad.npy", np.zeros((7, 4), dtype=np.float32))  # wrong mel count
    out = tmp_path / "run"
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2",
        str(REPO / "recipes" / "vocode.py"), "checkpoint=none", "model=debug", f"input={inputs}",
        f"hydra.run.dir={out}", "figures=false", "progress=false", "num_threads=1",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=240)
    assert result.returncode != 0, result.stderr[-2000:]  # zbad.npy failed
    assert "1 of 6 files failed" in (out / "vocode_rank0.log").read_text()
    summary = json.loads((out / "summary.json").read_text())
    written = sorted(record["output"] for record in summary["files"])
    assert written == sorted(f"{stem}.wav" for stem in frames)
    assert {record["rank"] for record in summary["files"]} == {0, 1}
    for record in summary["files"]:
        assert record["samples"] == frames[Path(record["output"]).stem] * HOP
    assert [failure["output"] for failure in summary["failures"]] == ["zbad.wav"]
    assert "(num_mels=80, T)" in summary["failures"][0]["error"]
    assert summary["world_size"] == 2 and summary["missing"] == []
    assert not [p for p in out.rglob(".*") if p.name != ".run.lock" and p.is_file()]
    assert (out / "vocode_rank0.log").is_file() and (out / "vocode_rank1.log").is_file()
