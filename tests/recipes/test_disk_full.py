"""A full disk or an unwritable folder is one line naming the path, never a half-written file.

Issue 21 item 13: a full disk during a checkpoint write was torch's raw
``basic_ios::clear: iostream error`` traceback, vocode logged ``LibsndfileError: System
error.``. The disk is simulated: the writer raises ``OSError(ENOSPC)`` or an opaque
``RuntimeError`` after some bytes, and ``os.statvfs`` reports no free blocks (the check
``upsampler._atomic`` makes after an opaque failure). Tests run as root, so permission
problems are simulated by the raised errno, and an unwritable folder is a path below a
regular file.
"""

from __future__ import annotations

import errno
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
import torch

from recipe_support import compose_config, load_recipe
from training_support import (  # noqa: F401 (one_thread: a fixture)
    one_thread,
    tiny_train_overrides,
    tiny_trainer,
    write_corpus,
)
from upsampler._atomic import WriteError, atomic_write, write_json
from upsampler.analysis.figures import save_png
from upsampler.recipe_support.errors import RecipeError, one_line
from upsampler.recipe_support.vocoding import write_wav

SAMPLE_RATE, NUM_MELS = 16000, 80
TORCH_ERROR = "basic_ios::clear: iostream error"  # what torch.save to a path says on ENOSPC


def leftovers(folder: Path) -> list[str]:
    """Temporary files of atomic writes under ``folder``."""
    return sorted(p.name for p in folder.rglob(".*partial*"))


class FullDisk:
    """``os.statvfs`` of a full (or read-only) file system, as seen after a failure."""

    def __init__(self, real: Any, read_only: bool = False) -> None:
        self.real, self.read_only = real, read_only

    def __call__(self, path: Any) -> Any:
        stats = self.real(path)
        values = list(stats)
        values[4] = 0  # f_bavail
        if self.read_only:
            values[8] |= os.ST_RDONLY  # f_flag
        return os.statvfs_result(values)


@pytest.fixture
def full_disk(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "statvfs", FullDisk(os.statvfs))


def torch_like_failure(temp: Path) -> None:
    """What ``torch.save`` to a path does on a full disk: some bytes, then RuntimeError."""
    temp.write_bytes(b"PK\x03\x04 partial")
    raise RuntimeError(TORCH_ERROR)


# --- upsampler._atomic ----------------------------------------------------------------------


def test_opaque_failure_on_a_full_disk_says_so_and_keeps_the_old_file(
        tmp_path: Path, full_disk: None) -> None:
    target = tmp_path / "g_00000002"
    target.write_bytes(b"the previous complete file")
    with pytest.raises(WriteError) as info:
        atomic_write(target, torch_like_failure)
    assert str(info.value) == f"cannot write {str(target)!r}: no space left on device"
    assert info.value.errno == errno.ENOSPC and info.value.disk_full
    assert one_line(info.value) == str(info.value)  # no "WriteError:" prefix in recipe logs
    assert target.read_bytes() == b"the previous complete file"
    assert leftovers(tmp_path) == []


def test_folder_is_checked_while_the_failed_bytes_still_fill_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """On a real full disk the temporary file holds the last free blocks: removing it before
    the check would find room again and report libsndfile's "System error." (seen on a
    256 kB tmpfs)."""
    real = os.statvfs

    def full_while_the_temporary_exists(path: Any) -> Any:
        stats = real(path)
        if not leftovers(Path(path)):
            return stats
        return os.statvfs_result([*stats[:4], 0, *stats[5:]])

    monkeypatch.setattr(os, "statvfs", full_while_the_temporary_exists)
    monkeypatch.setattr(os, "fsync", lambda descriptor: None)  # the probe: room once freed
    with pytest.raises(WriteError, match="no space left on device"):
        atomic_write(tmp_path / "x.wav", torch_like_failure)
    assert list(tmp_path.iterdir()) == []


def test_read_only_file_system_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "statvfs", FullDisk(os.statvfs, read_only=True))
    with pytest.raises(WriteError, match="read-only file system"):
        atomic_write(tmp_path / "x.wav", torch_like_failure)
    assert leftovers(tmp_path) == []


def test_quota_found_by_the_probe_write(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Free blocks but no quota left: only a write finds it (the probe, then removed)."""
    def over_quota(descriptor: int, data: bytes) -> int:
        raise OSError(errno.EDQUOT, os.strerror(errno.EDQUOT))

    monkeypatch.setattr(os, "write", over_quota)
    with pytest.raises(WriteError, match="disk quota exceeded"):
        atomic_write(tmp_path / "x.pt", torch_like_failure)
    assert list(tmp_path.iterdir()) == []  # neither the temporary nor the probe


def test_opaque_failure_with_room_on_disk_is_the_original_error(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="iostream error"):
        atomic_write(tmp_path / "x.pt", torch_like_failure)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("number", "reason"), [
    (errno.ENOSPC, "no space left on device"), (errno.EDQUOT, "disk quota exceeded"),
    (errno.EACCES, "permission denied"), (errno.EROFS, "read-only file system")])
def test_os_errors_of_text_json_and_png_writers_are_one_line(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, number: int, reason: str) -> None:
    real_open = open

    def failing_open(file: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        stream = real_open(file, mode, *args, **kwargs)
        if "w" in mode and ".partial-" in str(file):
            stream.write(b"half" if "b" in mode else "half")
            stream.close()
            raise OSError(number, os.strerror(number))
        return stream

    monkeypatch.setattr("builtins.open", failing_open)
    monkeypatch.setattr("io.open", failing_open)  # pathlib's
    from matplotlib.figure import Figure

    for path, write in ((tmp_path / "a.json", lambda p: write_json(p, {"a": 1})),
                        (tmp_path / "b.png", lambda p: save_png(Figure(), p))):
        with pytest.raises(WriteError) as info:
            write(path)
        assert str(info.value) == f"cannot write {str(path)!r}: {reason}"
    assert list(tmp_path.iterdir()) == []


def test_folder_below_a_regular_file_names_the_file(tmp_path: Path) -> None:
    blocker = tmp_path / "results"
    blocker.write_text("a file where a folder should be")
    for target in (blocker / "out.json", blocker / "sub" / "out.json"):
        with pytest.raises(WriteError) as info:
            write_json(target, {})
        assert str(info.value) == (f"cannot write {str(target)!r}: {str(blocker)!r} is a file, "
                                   f"not a folder")


# --- the vocode wav writer ------------------------------------------------------------------


def test_wav_writer_on_a_full_disk_says_so(tmp_path: Path, full_disk: None,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    def system_error(self: sf.SoundFile, data: np.ndarray) -> None:
        raise sf.LibsndfileError(2, "Error writing: ")  # libsndfile's "System error."

    monkeypatch.setattr(sf.SoundFile, "write", system_error)
    generator = tiny_trainer().generator.eval()
    target = tmp_path / "clip.wav"
    with pytest.raises(WriteError) as info, torch.inference_mode():
        write_wav(target, generator, torch.zeros(NUM_MELS, 3), 600, SAMPLE_RATE, 64)
    assert str(info.value) == f"cannot write {str(target)!r}: no space left on device"
    assert list(tmp_path.iterdir()) == []


def test_vocode_stops_with_one_line_on_a_full_disk(
        tmp_path: Path, full_disk: None, monkeypatch: pytest.MonkeyPatch) -> None:
    inputs = tmp_path / "in"
    inputs.mkdir()
    for name in ("a", "b", "c"):
        np.save(inputs / f"{name}.npy", np.zeros((NUM_MELS, 3), dtype=np.float32))
    calls: list[int] = []
    real_write = sf.SoundFile.write

    def full_from_the_second(self: sf.SoundFile, data: np.ndarray) -> None:
        calls.append(1)
        if len(calls) > 1:
            raise sf.LibsndfileError(2, "Error writing: ")
        real_write(self, data)

    monkeypatch.setattr(sf.SoundFile, "write", full_from_the_second)
    vocode = load_recipe("vocode")
    out = tmp_path / "out"
    with pytest.raises(RecipeError) as info:
        vocode.run(compose_config("vocode", [
            "checkpoint=none", "model=debug", "audio=16k_hop200", f"output_dir={out}",
            "progress=false", "figures=false", "num_threads=1", f"input={inputs}"]))
    message = str(info.value)
    assert message.startswith(f"cannot write {str(out / 'b.wav')!r}: no space left on device; "
                              f"stopped after ")
    assert "\n" not in message and len(calls) == 2  # c.npy is not tried
    assert (out / "a.wav").is_file() and not (out / "b.wav").exists()
    assert leftovers(out) == []


def test_vocode_removes_an_output_whose_record_cannot_be_written(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The wav fits but its record does not (seen on a full tmpfs): an unrecorded wav would
    be a file no run of the folder wrote, so it is removed."""
    from upsampler.recipe_support import records

    real_write_json = records.write_json

    def no_room(path: Any, data: Any) -> Any:
        if Path(path).name.startswith("a.wav"):  # the done and the failed record
            raise WriteError(path, errno.ENOSPC)
        return real_write_json(path, data)

    inputs = tmp_path / "in"
    inputs.mkdir()
    np.save(inputs / "a.npy", np.zeros((NUM_MELS, 3), dtype=np.float32))
    monkeypatch.setattr(records, "write_json", no_room)
    out = tmp_path / "out"
    with pytest.raises(RecipeError, match=r"a\.wav\.json': no space left on device; stopped"):
        load_recipe("vocode").run(compose_config("vocode", [
            "checkpoint=none", "model=debug", "audio=16k_hop200", f"output_dir={out}",
            "progress=false", "figures=false", "num_threads=1", f"input={inputs}"]))
    assert not (out / "a.wav").exists() and leftovers(out) == []


# --- training -------------------------------------------------------------------------------


train = load_recipe("train")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_corpus(tmp_path_factory.mktemp("corpus"), 4, 0, SAMPLE_RATE // 4)


def run_train(corpus: Path, output_dir: Path, *overrides: str) -> dict:
    return train.run(compose_config("train", tiny_train_overrides(corpus, output_dir,
                                                                  *overrides)))


@pytest.mark.usefixtures("one_thread")
def test_full_disk_during_a_checkpoint_keeps_the_last_pair(
        corpus: Path, tmp_path: Path, full_disk: None, monkeypatch: pytest.MonkeyPatch) -> None:
    real_save = torch.save
    saves: list[int] = []

    def full_at_the_second_pair(obj: Any, stream: Any, *args: Any, **kwargs: Any) -> None:
        saves.append(1)
        if len(saves) == 3:  # g_00000002: torch's own failure, some bytes written first
            stream.write(b"PK\x03\x04 partial")
            raise RuntimeError(TORCH_ERROR)
        real_save(obj, stream, *args, **kwargs)

    monkeypatch.setattr(torch, "save", full_at_the_second_pair)
    out = tmp_path / "run"
    with pytest.raises(RecipeError) as info:
        run_train(corpus, out)
    assert str(info.value) == (
        f"cannot write {str(out / 'g_00000002')!r}: no space left on device; stopped. "
        f"The last complete checkpoint pair is step 1 in {out}")
    assert sorted(p.name for p in out.glob("*_0*")) == ["do_00000001", "g_00000001"]
    assert leftovers(out) == []
    torch.load(out / "do_00000001", weights_only=True)  # the kept pair is whole


def test_checkpoint_written_through_a_file_object_reports_the_os_error(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The real ENOSPC of the bytes written by torch.save surfaces through the file object."""
    from upsampler.training import checkpoints

    real_open = Path.open

    def full_file(self: Path, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        stream = real_open(self, mode, *args, **kwargs)
        if "w" in mode and ".partial-" in self.name:
            def write(data: Any) -> int:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            stream.write = write  # type: ignore[method-assign]
        return stream

    monkeypatch.setattr(Path, "open", full_file)
    with pytest.raises(WriteError, match="g_00000003': no space left on device$"):
        checkpoints.save_pair(tmp_path, 3, {"w": torch.ones(4)}, {"steps": 3}, keep_last=None)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.usefixtures("one_thread")
def test_full_disk_writing_metrics_is_one_line(corpus: Path, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    from upsampler.training import monitor

    def full(path: Any, text: str) -> None:
        raise WriteError(path, errno.ENOSPC)

    monkeypatch.setattr(monitor, "append_text", full)
    out = tmp_path / "run"
    with pytest.raises(RecipeError) as info:
        run_train(corpus, out, "max_steps=1")
    assert str(info.value) == (f"cannot write {str(out / 'metrics.jsonl')!r}: no space left "
                               f"on device; stopped. No checkpoint pair written in {out}")


def test_recipe_exit_on_a_write_error_is_one_line(caplog: pytest.LogCaptureFixture) -> None:
    from upsampler.recipe_support.errors import run_or_exit

    def run(cfg: None) -> None:
        raise WriteError("/results/report.json", errno.EACCES)

    with caplog.at_level(logging.ERROR), pytest.raises(SystemExit) as ending:
        run_or_exit(run, None, logging.getLogger("test"))
    assert ending.value.code == 1
    assert caplog.messages == ["cannot write '/results/report.json': permission denied"]
