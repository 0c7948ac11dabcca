"""recipes/vocode.py run as a user runs it: never writes over what it did not make, resumes
only what matches, one run per folder, exit status, one-line errors (tiny model, tiny inputs)."""

from __future__ import annotations

import json
import os
import resource
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from option_battery import tree_state
from recipe_support import REPO
from upsampler.recipe_support.lock import RunLock
from upsampler.recipe_support.vocode_setup import (
    refuse_run_dir_in_input,
    run_dir_in_input_problem,
)

SAMPLE_RATE, HOP, NUM_MELS = 16000, 200, 80  # configs/audio/16k_hop200.yaml
BASE = ["checkpoint=none", "model=debug", "audio=16k_hop200", "progress=false", "figures=false",
        "num_threads=1"]
TIMEOUT_S = 180


def vocode(*overrides: str, cwd: Path | None = None,
           limit_file_bytes: int | None = None) -> subprocess.CompletedProcess[str]:
    """``python recipes/vocode.py BASE overrides`` in a fresh process, umask 022."""

    def child_setup() -> None:
        os.umask(0o022)
        if limit_file_bytes is not None:  # writes past it fail with EFBIG ("File too large")
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit_file_bytes, limit_file_bytes))

    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, str(REPO / "recipes" / "vocode.py"), *BASE, *overrides],
                          capture_output=True, text=True, timeout=TIMEOUT_S, cwd=cwd, env=env,
                          preexec_fn=child_setup)


def log_of(run_dir: Path) -> str:
    return (run_dir / "vocode_rank0.log").read_text()


def last_line(run_dir: Path) -> str:
    return log_of(run_dir).strip().splitlines()[-1]


def write_wav(path: Path, samples: int, rate: int = SAMPLE_RATE, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = 0.1 * np.random.default_rng(seed).standard_normal(samples).astype(np.float32)
    sf.write(path, data, rate)
    return path


def write_mel(path: Path, frames: int, seed: int = 0, dtype: np.dtype = np.float32) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, np.random.default_rng(seed).standard_normal((NUM_MELS, frames)).astype(dtype))
    return path


def assert_one_line_failure(result: subprocess.CompletedProcess[str], run_dir: Path,
                            message: str) -> None:
    assert result.returncode == 1, result.stderr[-2000:]
    assert "Traceback" not in result.stdout + result.stderr + log_of(run_dir)
    assert message in last_line(run_dir), log_of(run_dir)


def test_output_that_is_the_input_is_refused_and_the_input_kept(tmp_path: Path) -> None:
    source = write_wav(tmp_path / "x" / "a.wav", 1234)
    before = source.read_bytes()
    result = vocode(f"input={source}", f"hydra.run.dir={tmp_path / 'x'}")
    assert_one_line_failure(result, tmp_path / "x", f"would overwrite input '{source}'")
    assert source.read_bytes() == before


def test_existing_file_the_run_did_not_write_is_not_overwritten(tmp_path: Path) -> None:
    write_mel(tmp_path / "in" / "b.npy", 3)
    foreign = write_wav(tmp_path / "out" / "b.wav", 999, seed=1)
    before = foreign.read_bytes()
    result = vocode(f"input={tmp_path / 'in'}", f"hydra.run.dir={tmp_path / 'out'}")
    assert_one_line_failure(result, tmp_path / "out", f"output '{foreign}' for input")
    assert foreign.read_bytes() == before


def test_a_users_folder_inside_the_input_is_refused_before_hydra_writes(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """hydra.run.dir=<input>/sub: Hydra's .hydra/ there would make every later run skip
    sub/ as an earlier run's folder, so the run is refused first and the tree is unchanged."""
    write_wav(tmp_path / "in" / "top.wav", 1234)
    for name in ("a", "b"):
        write_wav(tmp_path / "in" / "sub" / f"{name}.wav", 1234)
    before = tree_state(tmp_path)
    argv = ["vocode.py", f"input={tmp_path / 'in'}", f"hydra.run.dir={tmp_path / 'in' / 'sub'}"]
    with pytest.raises(SystemExit) as ending:  # vocode.py's first call, before Hydra's main
        refuse_run_dir_in_input(argv)
    assert ending.value.code == 1
    assert capsys.readouterr().err.startswith(
        f"hydra.run.dir='{tmp_path / 'in' / 'sub'}' is an existing folder of input=")
    assert tree_state(tmp_path) == before
    for allowed in ("new", "sub/new"):  # a new folder inside the input is fine
        assert run_dir_in_input_problem([*argv[:2], f"hydra.run.dir={tmp_path / 'in' / allowed}"]
                                        ) is None
    assert "is the input folder" in run_dir_in_input_problem(
        [*argv[:2], f"hydra.run.dir={tmp_path / 'in'}"])


def test_a_refused_run_removes_the_run_folder_it_made(tmp_path: Path) -> None:
    """A new run folder inside the input is allowed, but a run refused there (a bad option)
    takes Hydra's .hydra/ and log with it: the input tree is as it was."""
    write_wav(tmp_path / "in" / "sub" / "a.wav", 1234)
    before = tree_state(tmp_path)
    result = vocode(f"input={tmp_path / 'in'}", f"hydra.run.dir={tmp_path / 'in' / 'new' / 'run'}",
                    "window_frames=0")
    assert result.returncode == 1 and "Traceback" not in result.stdout + result.stderr
    assert "window_frames must be a positive integer, got 0" in result.stdout + result.stderr
    assert tree_state(tmp_path) == before


def test_rerun_with_other_settings_is_refused_naming_each_change(tmp_path: Path) -> None:
    mel, out = write_mel(tmp_path / "m.npy", 5), tmp_path / "out"
    assert vocode(f"input={mel}", f"hydra.run.dir={out}").returncode == 0
    before = (out / "m.wav").read_bytes()
    result = vocode(f"input={mel}", f"hydra.run.dir={out}", "audio.fmax=7000", "seed=1")
    assert_one_line_failure(result, out, "holds results made with other settings")
    assert "audio.fmax: 8000 -> 7000" in last_line(out)
    assert "weights.seed: 0 -> 1" in last_line(out)
    assert (out / "m.wav").read_bytes() == before


def test_rerun_with_another_checkpoint_of_the_same_shape_is_refused(tmp_path: Path) -> None:
    sys.path.insert(0, str(REPO / "tests"))
    from recipe_support import compose_config
    from hydra.utils import instantiate

    model_cfg = compose_config("vocode", ["model=debug", "audio=16k_hop200"]).model
    for seed, name in ((0, "g_a"), (1, "g_b")):
        torch.manual_seed(seed)
        torch.save({"generator": instantiate(model_cfg).state_dict()}, tmp_path / name)
    mel, out = write_mel(tmp_path / "m.npy", 5), tmp_path / "out"
    ckpt = tmp_path / "g_now"
    os.replace(tmp_path / "g_a", ckpt)
    assert vocode(f"input={mel}", f"hydra.run.dir={out}", f"checkpoint={ckpt}").returncode == 0
    os.replace(tmp_path / "g_b", ckpt)  # same path, other weights
    result = vocode(f"input={mel}", f"hydra.run.dir={out}", f"checkpoint={ckpt}")
    assert_one_line_failure(result, out, "weights.sha256:")


def test_changed_input_is_redone_unchanged_one_kept(tmp_path: Path) -> None:
    inputs, out = tmp_path / "in", tmp_path / "out"
    write_mel(inputs / "a.npy", 4)
    write_mel(inputs / "b.npy", 4)
    assert vocode(f"input={inputs}", f"hydra.run.dir={out}").returncode == 0
    kept = (out / "b.wav").stat().st_mtime_ns
    write_mel(inputs / "a.npy", 6, seed=3)  # new content, 6 frames
    assert vocode(f"input={inputs}", f"hydra.run.dir={out}").returncode == 0
    assert sf.info(out / "a.wav").frames == 6 * HOP
    assert (out / "b.wav").stat().st_mtime_ns == kept


def test_second_run_into_a_busy_folder_is_refused(tmp_path: Path) -> None:
    mel, out = write_mel(tmp_path / "m.npy", 3), tmp_path / "out"
    with RunLock(out):  # stands for a run in progress
        result = vocode(f"input={mel}", f"hydra.run.dir={out}")
    assert_one_line_failure(result, out, f"another run (pid {os.getpid()}) is writing to")
    assert not (out / "m.wav").exists()


def test_temporaries_of_a_killed_run_are_removed_and_outputs_are_0644(tmp_path: Path) -> None:
    mel, out = write_mel(tmp_path / "m.npy", 3), tmp_path / "out"
    stale = out / "figures" / ".m.png.partial-4242-0badcafe.png"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"half a png")
    result = vocode(f"input={mel}", f"hydra.run.dir={out}", "figures=true")
    assert result.returncode == 0, result.stderr[-2000:]
    assert not stale.exists()
    for name in ("m.wav", "figures/m.png", "summary.json", "records/m.wav.json"):
        assert stat.S_IMODE((out / name).stat().st_mode) == 0o644, name


def test_exit_status_is_1_when_a_file_failed(tmp_path: Path) -> None:
    inputs, out = tmp_path / "in", tmp_path / "out"
    write_mel(inputs / "good.npy", 3)
    (inputs / "bad.wav").write_bytes(b"not a wav")
    result = vocode(f"input={inputs}", f"hydra.run.dir={out}")
    assert result.returncode == 1
    assert "1 of 2 files failed" in last_line(out)
    summary = json.loads((out / "summary.json").read_text())
    assert [f["output"] for f in summary["failures"]] == ["bad.wav"]
    assert sf.info(out / "good.wav").frames == 3 * HOP


def test_last_line_says_when_every_file_failed(tmp_path: Path) -> None:
    inputs, out = tmp_path / "in", tmp_path / "out"
    (inputs).mkdir()
    (inputs / "a.wav").write_bytes(b"not a wav")
    (inputs / "b.wav").write_bytes(b"nor this")
    result = vocode(f"input={inputs}", f"hydra.run.dir={out}")
    assert_one_line_failure(result, out, "all 2 files failed")


def test_bad_options_are_one_line_errors(tmp_path: Path) -> None:
    mel = write_mel(tmp_path / "m.npy", 3)
    for index, (override, message) in enumerate([
        ("num_threads=0", "num_threads must be a positive integer or null, got 0"),
        ("seed=abc", "seed must be an integer >= 0, got 'abc'"),
        ("figures=flase", "figures must be true or false, got 'flase'"),
    ]):
        out = tmp_path / f"out{index}"
        out.mkdir()  # an existing run folder keeps its log (a new one is removed when refused)
        assert_one_line_failure(vocode(f"input={mel}", f"hydra.run.dir={out}", override),
                                out, message)
        assert not (out / "m.wav").exists()


def test_unwritable_output_dir_is_one_line(tmp_path: Path) -> None:
    mel, blocker, out = write_mel(tmp_path / "m.npy", 3), tmp_path / "file", tmp_path / "out"
    blocker.write_text("a file where a folder should be")
    out.mkdir()  # an existing run folder keeps its log (a new one is removed when refused)
    result = vocode(f"input={mel}", f"hydra.run.dir={out}", f"output_dir={blocker / 'sub'}")
    assert_one_line_failure(result, out, "is not writable")


def test_full_disk_fails_the_file_records_it_and_exits_1(tmp_path: Path) -> None:
    mel, out = write_mel(tmp_path / "big.npy", 200), tmp_path / "out"  # 80 kB of wav
    result = vocode(f"input={mel}", f"hydra.run.dir={out}", limit_file_bytes=40_000)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert [failure["output"] for failure in summary["failures"]] == ["big.wav"]
    assert not (out / "big.wav").exists()
    assert not [p for p in out.rglob(".*partial*")]


def test_input_dot_skips_hidden_folders_and_earlier_runs(tmp_path: Path) -> None:
    write_mel(tmp_path / "clip.npy", 3)
    write_mel(tmp_path / ".venv" / "lib" / "x.npy", 3)
    write_mel(tmp_path / "outputs" / "vocode" / "old.npy", 3)
    write_mel(tmp_path / "multirun" / "old2.npy", 3)
    write_mel(tmp_path / "elsewhere" / "run" / "m.npy", 3)
    (tmp_path / "elsewhere" / "run" / ".hydra").mkdir()
    result = vocode("input=.", "hydra.run.dir=outputs/new", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    summary = json.loads((tmp_path / "outputs" / "new" / "summary.json").read_text())
    assert [record["output"] for record in summary["files"]] == ["clip.wav"]


# In-process checks of single inputs (faster than a subprocess each; same code path).

def run_in_process(tmp_path: Path, source: Path) -> dict:
    from recipe_support import compose_config, load_recipe

    cfg = compose_config("vocode", [*BASE, f"input={source}", f"output_dir={tmp_path / 'out'}"])
    return load_recipe("vocode").run(cfg)


def test_one_sample_wav_error_names_its_real_length(tmp_path: Path) -> None:
    summary = run_in_process(tmp_path, write_wav(tmp_path / "one.wav", 1))
    (failure,) = summary["failures"]
    assert "wav has 1 samples at 16000 Hz" in failure["error"]
    # n_fft 1024, hop 200: reflect padding of 412 needs 413 samples, i.e. 600 after padding
    # to the hop, which any wav of at least 401 samples reaches
    assert "needs at least 401" in failure["error"]


def test_other_sample_rate_is_resampled_with_a_log_line(
    tmp_path: Path, caplog: "pytest.LogCaptureFixture"
) -> None:
    import logging

    source = write_wav(tmp_path / "low.wav", 8000, rate=8000)  # 1 s at 8 kHz
    with caplog.at_level(logging.INFO, logger="vocode"):
        summary = run_in_process(tmp_path, source)
    assert f"resampling {source} from 8000 Hz to 16000 Hz" in caplog.text
    assert sf.info(tmp_path / "out" / "low.wav").frames == 16000 == summary["files"][0]["samples"]


@pytest.mark.parametrize("dtype", [np.complex64, np.int16, np.bool_])
def test_non_real_float_mels_are_refused(tmp_path: Path, dtype: np.dtype) -> None:
    path = tmp_path / "m.npy"
    np.save(path, np.ones((NUM_MELS, 4), dtype=dtype))
    (failure,) = run_in_process(tmp_path, path)["failures"]
    assert "expected real floating-point values" in failure["error"]
    assert not (tmp_path / "out" / "m.wav").exists()


def test_export_num_threads_0_is_one_line(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    result = subprocess.run(
        [sys.executable, str(REPO / "recipes" / "export.py"), "model=debug", "num_threads=0",
         "formats=[torchscript]", f"hydra.run.dir={tmp_path}"],
        capture_output=True, text=True, timeout=TIMEOUT_S, env=env)
    assert result.returncode == 1
    assert "Traceback" not in result.stdout + result.stderr
    assert "num_threads must be a positive integer or null, got 0" in (
        tmp_path / "export.log").read_text()


def test_copy_synthesis_error_names_the_callers_length() -> None:
    from upsampler import HiFiGANGenerator
    from upsampler.audio import MelSpectrogram, copy_synthesis

    generator = HiFiGANGenerator.from_hop_length(HOP, upsample_initial_channel=16).eval()
    transform = MelSpectrogram(SAMPLE_RATE, 1024, HOP, 1024, NUM_MELS)
    with pytest.raises(ValueError, match="at least 401 samples .* got 1$"):
        copy_synthesis(generator, transform, torch.zeros(1))
    assert copy_synthesis(generator, transform, torch.zeros(401)).shape == (401,)


def test_uncreatable_hydra_run_dir_is_one_line(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("a file where a folder should be")
    result = vocode(f"input={write_mel(tmp_path / 'm.npy', 3)}", f"hydra.run.dir={blocker / 'x'}")
    assert result.returncode == 1 and "Traceback" not in result.stderr + result.stdout
    assert result.stderr.strip().splitlines()[-1].startswith(f"hydra.run.dir='{blocker / 'x'}'")


def test_every_folder_left_out_of_the_input_is_logged_with_why(
    tmp_path: Path, caplog: "pytest.LogCaptureFixture"
) -> None:
    import logging

    root = tmp_path / "in"
    write_mel(root / "clip.npy", 3)
    write_mel(root / "old_run" / "m.npy", 3)
    (root / "old_run" / "records").mkdir()
    write_mel(root / "outputs" / "o.npy", 3)
    write_mel(root / ".cache" / "c.npy", 3)
    with caplog.at_level(logging.INFO, logger="vocode"):
        summary = run_in_process(tmp_path, root)
    assert [record["output"] for record in summary["files"]] == ["clip.wav"]
    assert f"not searched for inputs: {root / '.cache'} (hidden folder)" in caplog.text
    assert (f"not searched for inputs: {root / 'old_run'} (an earlier run's folder (holds "
            f"records/))") in caplog.text
    assert f"not searched for inputs: {root / 'outputs'} (top-level outputs/" in caplog.text


def test_a_file_name_that_is_not_utf8_is_vocoded_and_logged(
    tmp_path: Path, capsys: "pytest.CaptureFixture[str]"
) -> None:
    """b"caf\\xe9.wav" (Latin-1, allowed on Linux) is vocoded under the same bytes; a bad
    file with such a name fails in one line that a strict UTF-8 log file (Hydra's) takes."""
    import logging

    root = tmp_path / "in"
    root.mkdir()
    good, bad = os.fsdecode(b"caf\xe9.wav"), os.fsdecode(b"bad\xff.wav")
    audio = 0.1 * np.random.default_rng(0).standard_normal(1234).astype(np.float32)
    sf.write(os.fsencode(root / good), audio, SAMPLE_RATE)
    (root / bad).write_bytes(b"not audio")
    handler = logging.FileHandler(tmp_path / "vocode.log", encoding="utf-8")  # strict
    logging.getLogger("vocode").addHandler(handler)
    try:
        summary = run_in_process(tmp_path, root)
    finally:
        logging.getLogger("vocode").removeHandler(handler)
        handler.close()
    assert [record["output"] for record in summary["files"]] == [good]
    assert os.fsencode(good) in os.listdir(os.fsencode(tmp_path / "out"))
    assert sf.info(os.fsencode(tmp_path / "out" / good)).frames == 1234
    (failure,) = summary["failures"]
    assert failure["output"] == bad and "not readable audio" in failure["error"]
    assert "Logging error" not in capsys.readouterr().err
    assert f"failed {root}/bad\\xff.wav: ValueError: audio file " in (
        tmp_path / "vocode.log").read_text(encoding="utf-8")


def test_big_endian_mel_is_vocoded_and_a_non_numeric_npy_is_named_as_such(tmp_path: Path) -> None:
    root = tmp_path / "in"
    mel = np.random.default_rng(0).standard_normal((NUM_MELS, 4)).astype(np.float32)
    write_mel(root / "native.npy", 4)
    np.save(root / "big.npy", mel.astype(">f4"))
    (root / "garbage.npy").write_bytes(b"this is no .npy file at all")
    np.save(root / "objects.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    summary = run_in_process(tmp_path, root)
    assert [record["output"] for record in summary["files"]] == ["big.wav", "native.wav"]
    errors = {failure["output"]: failure["error"] for failure in summary["failures"]}
    assert "is not a numeric .npy mel (no .npy header)" in errors["garbage.wav"]
    assert "is not a numeric .npy mel (it holds Python objects)" in errors["objects.wav"]
    assert not any("allow_pickle" in error for error in errors.values())
    from upsampler.recipe_support.vocoding import load_mel

    torch.testing.assert_close(load_mel(root / "big.npy", NUM_MELS), torch.from_numpy(mel))
