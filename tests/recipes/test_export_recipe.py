"""Smoke tests of recipes/export.py with the tiny model: files, verification, checkpoints."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Callable

import pytest
import torch
from omegaconf import DictConfig

from option_battery import battery, nested_battery, tree_state, with_value
from recipe_support import compose_config, load_recipe

from upsampler import HiFiGANGenerator
from upsampler.export import OnnxStream, run_program, run_torchscript, weights_fingerprint

HOP, NUM_MELS = 200, 80  # configs/audio/16k_hop200.yaml
EXAMPLE_FRAMES, VERIFY_FRAMES = 5, [3, 11, 17]
UNSEEN_FRAMES = 8  # a length neither the export nor the recipe's verification ran
READBACK_ATOL = 1e-5
STREAM_CHUNK = 4  # no VERIFY_FRAMES length is a multiple: each ends in a partial chunk
STREAM_UNSEEN_FRAMES = 13  # neither verified nor a multiple of the chunk
STREAM_PIECES = 5  # the test hands the stream this many frames, then the rest
SAMPLE_RATE = 16000  # configs/audio/16k_hop200.yaml
Runner = Callable[[torch.Tensor], torch.Tensor]  # a written file run on a mel

export = load_recipe("export")


def make_cfg(output_dir: Path, *overrides: str) -> DictConfig:
    return compose_config("export", [
        "model=debug", "audio=16k_hop200", f"output_dir={output_dir}",
        f"example_frames={EXAMPLE_FRAMES}", f"verify_frames={VERIFY_FRAMES}", *overrides,
    ])


def eager_output(cfg: DictConfig, mel: torch.Tensor) -> torch.Tensor:
    """What the configured generator (same seed, so the same weights) gives in eager."""
    with torch.no_grad():
        return export.inference_generator(cfg)(mel)


def deprecation_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.name == "export" and r.levelno == logging.WARNING]


def test_export_recipe_default_writes_onnx_and_program(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """The default formats write ``.onnx`` and ``.pt2``, no TorchScript and no warning; the
    ``.pt2`` read back by a fresh ``run_program`` equals eager at an unseen length."""
    for module in ("onnx", "onnxruntime", "onnxscript"):
        pytest.importorskip(module)
    caplog.set_level(logging.INFO)
    cfg = make_cfg(tmp_path)
    results = export.run(cfg)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "export.json", "generator.onnx", "generator.pt2"]
    assert list(results) == ["onnx", "program"]
    for fmt in results:
        assert results[fmt]["max_abs_error"] <= 1e-4
    summary = json.loads((tmp_path / "export.json").read_text())
    assert summary["hop_length"] == HOP and summary["formats"] == results
    assert deprecation_warnings(caplog) == []
    mel = torch.randn(1, NUM_MELS, UNSEEN_FRAMES)  # batch 1: the example had batch 2
    output = run_program(tmp_path / "generator.pt2", mel)
    assert output.shape == (1, 1, UNSEEN_FRAMES * HOP)
    torch.testing.assert_close(output, eager_output(cfg, mel), rtol=0, atol=READBACK_ATOL)


@pytest.fixture(scope="module")
def streaming_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[DictConfig, Path]:
    """One run with the streaming step at ``STREAM_CHUNK`` frames, default formats."""
    for module in ("onnx", "onnxruntime", "onnxscript"):
        pytest.importorskip(module)
    output_dir = tmp_path_factory.mktemp("streaming_export")
    cfg = make_cfg(output_dir, f"streaming.chunk_frames={STREAM_CHUNK}")
    export.run(cfg)
    return cfg, output_dir


def test_export_recipe_writes_the_streaming_steps_verified(
        streaming_run: tuple[DictConfig, Path]) -> None:
    """``streaming.chunk_frames`` adds ``<name>_stream<chunk>.onnx`` and ``.pt2``, listed in
    ``export.json`` with their errors at every verify length, all within tolerance."""
    cfg, output_dir = streaming_run
    stem = f"generator_stream{STREAM_CHUNK}"
    assert sorted(p.name for p in output_dir.iterdir()) == [
        "export.json", "generator.onnx", "generator.pt2", f"{stem}.onnx", f"{stem}.pt2"]
    streaming = json.loads((output_dir / "export.json").read_text())["streaming"]
    assert {key: streaming[key] for key in ("chunk_frames", "batch_size", "sample_rate")} == {
        "chunk_frames": STREAM_CHUNK, "batch_size": 1, "sample_rate": SAMPLE_RATE}
    assert {fmt: Path(entry["path"]).name for fmt, entry in streaming["files"].items()} == {
        "onnx": f"{stem}.onnx", "program": f"{stem}.pt2"}
    for entry in streaming["files"].values():
        assert len(entry["max_abs_errors"]) == len(VERIFY_FRAMES)
        assert max(entry["max_abs_errors"]) == entry["max_abs_error"] <= cfg.tolerance


def test_the_written_onnx_step_streams_like_eager_at_a_fresh_length(
        streaming_run: tuple[DictConfig, Path]) -> None:
    """The ``.onnx`` step, run by ``OnnxStream`` on a length nobody verified and handed over
    in two uneven pieces, equals the eager generator of the same seed."""
    cfg, output_dir = streaming_run
    generator = export.inference_generator(cfg)
    stream = OnnxStream(output_dir / f"generator_stream{STREAM_CHUNK}.onnx",
                        chunk_frames=STREAM_CHUNK, fingerprint=weights_fingerprint(generator))
    mel = torch.randn(1, NUM_MELS, STREAM_UNSEEN_FRAMES)
    pieces = [stream.step(mel[..., :STREAM_PIECES]), stream.step(mel[..., STREAM_PIECES:]),
              stream.flush()]
    streamed = torch.cat([torch.from_numpy(piece) for piece in pieces], dim=-1)
    assert stream.sample_rate == SAMPLE_RATE
    torch.testing.assert_close(streamed, eager_output(cfg, mel), rtol=0, atol=READBACK_ATOL)


def test_export_recipe_writes_torchscript_only_when_asked_and_warns(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """``formats=[torchscript]`` still writes a verified ``.pt`` and logs one warning line
    naming the deprecation and the alternatives."""
    cfg = make_cfg(tmp_path, "formats=[torchscript]")
    results = export.run(cfg)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export.json", "generator.pt"]
    assert list(results) == ["torchscript"] and results["torchscript"]["max_abs_error"] <= 1e-4
    (warning,) = deprecation_warnings(caplog)
    assert "torch 2.13 deprecates TorchScript" in warning and "\n" not in warning
    for alternative in ("onnx", "program", "torch.export", "torch.compile"):
        assert alternative in warning, warning
    mel = torch.randn(2, NUM_MELS, UNSEEN_FRAMES)
    torch.testing.assert_close(run_torchscript(tmp_path / "generator.pt", mel),
                               eager_output(cfg, mel), rtol=0, atol=READBACK_ATOL)


def test_export_recipe_from_checkpoint(tmp_path: Path) -> None:
    """A checkpoint in the original layout exports to exactly its own eager output."""
    torch.manual_seed(1)
    fields = dict(upsample_rates=[5, 5, 4, 2], upsample_kernel_sizes=[10, 10, 8, 4],
                  upsample_initial_channel=16, resblock="2", resblock_kernel_sizes=[3],
                  resblock_dilation_sizes=[[1, 3]])
    generator = HiFiGANGenerator(**fields).eval()
    torch.save({"generator": generator.state_dict()}, tmp_path / "g_00000001")
    (tmp_path / "config.json").write_text(json.dumps(fields))
    out = tmp_path / "out"
    results = export.run(make_cfg(
        out, f"checkpoint={tmp_path / 'g_00000001'}", f"model_config={tmp_path / 'config.json'}",
        "formats=[torchscript]", "name=ckpt",
    ))
    assert list(results) == ["torchscript"] and results["torchscript"]["max_abs_error"] <= 1e-4
    mel = torch.randn(2, NUM_MELS, 6)
    with torch.no_grad():
        torch.testing.assert_close(torch.jit.load(str(out / "ckpt.pt"))(mel), generator(mel))


@pytest.mark.parametrize(
    ("override", "message"),
    [("verify_frames=[5]", "must not contain"), ("lowering=sideways", "lowering must be one of")],
)
def test_export_recipe_rejects_bad_settings(tmp_path: Path, override: str, message: str) -> None:
    with pytest.raises(export.ExportError, match=message):
        export.run(make_cfg(tmp_path, override))
    assert not tmp_path.exists() or list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("override", "message"),
    [("checkpoint=/no/such/g_1", "/no/such/g_1"),
     ("model.upsample_initial_channel=0", "upsample_initial_channel")],
)
def test_export_recipe_setup_problems_are_one_line_errors(
    tmp_path: Path, override: str, message: str
) -> None:
    with pytest.raises(export.ExportError, match=message) as caught:
        export.run(make_cfg(tmp_path, override))
    assert "\n" not in str(caught.value)


def test_export_recipe_logs_files_errors_and_node_types_without_optimiser_chatter(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """``lowering=conv_transpose`` writes ONNX's ConvTranspose node; the log says what was
    written, the errors at each verify length and the graph's node types, and nothing at
    INFO from the ONNX optimiser (it logs a line per folded initializer otherwise)."""
    for module in ("onnx", "onnxruntime", "onnxscript"):
        pytest.importorskip(module)
    caplog.set_level(logging.INFO)
    results = export.run(make_cfg(tmp_path, "formats=[onnx]", "lowering=conv_transpose"))
    onnx_result = results["onnx"]
    stages = 4  # configs/model/debug.yaml at hop 200: rates [5, 5, 4, 2]
    assert onnx_result["node_types"]["ConvTranspose"] == stages
    assert onnx_result["lowering"] == "conv_transpose"
    assert len(onnx_result["max_abs_errors"]) == 3 and onnx_result["max_abs_error"] <= 1e-4
    ours = [r.getMessage() for r in caplog.records if r.name == "export"]
    assert any(m.startswith(f"wrote {tmp_path / 'generator.onnx'}") and "[3, 11, 17]" in m
               for m in ours), ours
    assert any(f"ConvTranspose {stages}" in m and "nodes:" in m for m in ours), ours
    chatter = [r for r in caplog.records
               if r.name.startswith(("onnxscript", "onnx_ir")) and r.levelno < logging.WARNING]
    assert chatter == []


# Every option is checked before anything is built; a failed check writes nothing.

EXPORT_ALLOWED = {"seed=0", "seed=-1", "tolerance=0"}  # any seed; an exact-match check


def test_every_bad_option_is_one_line_before_any_work(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Each option of configs/export.yaml (groups aside) given a wrong type, 0, -1 or
    nothing is refused naming it; nothing is written, not even the output folder."""
    monkeypatch.chdir(tmp_path)  # a relative path that slipped through would land here
    base = make_cfg(tmp_path / "out")
    cases = [case for case in battery(base) if case[1] not in EXPORT_ALLOWED]
    assert {option for option, _, _ in cases} == {
        "checkpoint", "model_config", "name", "formats", "torchscript_method", "lowering",
        "example_frames", "verify_frames", "batch_size", "tolerance", "seed", "num_threads",
        "output_dir"}
    assert_refused_before_any_work(base, cases, tmp_path)


def test_every_bad_streaming_option_is_one_line_before_any_work(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same for the ``streaming`` group and each of its options."""
    monkeypatch.chdir(tmp_path)
    base = make_cfg(tmp_path / "out")
    cases = [case for case in nested_battery(base) if case[0].split(".")[0] == "streaming"]
    assert {option for option, _, _ in cases} == {
        "streaming", "streaming.chunk_frames", "streaming.batch_size", "streaming.lowering"}
    assert_refused_before_any_work(base, cases, tmp_path)


def assert_refused_before_any_work(base: DictConfig, cases: list[tuple[str, str, object]],
                                   root: Path) -> None:
    """Each ``(option, override, value)`` set on ``base`` stops the run with one line
    naming the option, and nothing appears under ``root``."""
    for option, override, value in cases:
        with pytest.raises(export.ExportError) as caught:
            export.run(with_value(base, option, value))
        message = str(caught.value)
        assert message.startswith(f"{option} must be ") and "\n" not in message, (override,
                                                                                  message)
        assert tree_state(root) == {}, override


@pytest.mark.parametrize(("override", "message"), [
    ("formats=[tflite]",
     "formats must be among ['onnx', 'program', 'torchscript'], got ['tflite']"),
    ("verify_frames=[]", "verify_frames must be a non-empty list of integers >= 3, got []"),
    ("verify_frames=[0]", "verify_frames must be a non-empty list of integers >= 3, got [0]"),
    ("batch_size=1", "batch_size must be an integer >= 2, got 1"),
    ("tolerance=abc", "tolerance must be a number >= 0, got 'abc'"),
    ("torchscript_method=script", "torchscript_method must be 'trace', got 'script'"),
    ("torchscript_method=bogus", "torchscript_method must be 'trace', got 'bogus'"),
    ("name=a/b", "name must be a file stem without a folder"),
    ("streaming.chunk_frames=0", "streaming.chunk_frames must be an integer >= 1 or null, got 0"),
    ("streaming.chunk_frames=4 formats=[torchscript]",
     "streaming.chunk_frames=4 needs formats with a streaming step (any of ['onnx', 'program']), "
     "got formats=['torchscript']"),
    ("streaming.chunk_frames=3 verify_frames=[3,6]",
     "verify_frames [3, 6] must hold a length that is not a multiple of "
     "streaming.chunk_frames=3"),
])
def test_reported_bad_options_name_what_is_allowed(tmp_path: Path, override: str,
                                                   message: str) -> None:
    with pytest.raises(export.ExportError) as caught:
        export.run(make_cfg(tmp_path / "out", *override.split()))
    assert str(caught.value).startswith(message) and "\n" not in str(caught.value)
    assert not (tmp_path / "out").exists()


def off_by_a_millisample(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make every TorchScript file the recipe runs differ from eager by 1e-3."""
    real = export.run_torchscript
    monkeypatch.setattr(export, "run_torchscript", lambda path, mel: real(path, mel) + 1e-3)


def test_failed_verification_leaves_nothing_under_a_final_name(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A file off by more than the tolerance is not renamed into place (nor left under a
    temporary name). The clean-up is the same for every format; TorchScript is the fastest
    to write."""
    with monkeypatch.context() as patch:
        off_by_a_millisample(patch)
        with pytest.raises(export.ExportError,
                           match=r"^torchscript export differs from eager by 0.001 > "
                                 r"tolerance=0.0001; no file was written$"):
            export.run(make_cfg(tmp_path, "formats=[torchscript]"))
    assert tree_state(tmp_path) == {}  # so a rerun finds nothing "not written by an export"


def test_a_failed_streaming_step_leaves_no_file_at_all(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The offline ``.pt2`` passes but its streaming step is off by 1e-3: neither file is
    renamed into place, nor left under a temporary name. Both writers are stand-ins (a file
    and a runner of eager, + 1e-3 for the step): the contract is the recipe's, not the
    exporters', and the stand-ins take milliseconds where the exports take seconds."""
    def exact(fmt: str, generator: torch.nn.Module, path: Path, **kwargs: object) -> Runner:
        path.write_bytes(b"program")
        return generator

    def off_by_a_millisample(fmt: str, generator: torch.nn.Module, path: Path,
                             **kwargs: object) -> Runner:
        path.write_bytes(b"step")
        return lambda mel: generator(mel) + 1e-3

    monkeypatch.setattr(export, "write_file", exact)
    monkeypatch.setattr(export, "write_stream", off_by_a_millisample)
    with pytest.raises(export.ExportError,
                       match=r"^streaming program export differs from eager by 0.001 > "
                             r"tolerance=0.0001; no file was written$"):
        export.run(make_cfg(tmp_path, "formats=[program]",
                            f"streaming.chunk_frames={STREAM_CHUNK}"))
    assert tree_state(tmp_path) == {}


def test_a_rerun_may_replace_the_streaming_steps_export_json_lists(tmp_path: Path) -> None:
    """The streaming files ``export.json`` lists are the export's own, any other is not."""
    ours, theirs = tmp_path / "generator_stream4.onnx", tmp_path / "generator_stream8.onnx"
    for path in (ours, theirs):
        path.write_bytes(b"")
    summary = {"formats": {}, "streaming": {"files": {"onnx": {"path": str(ours)}}}}
    (tmp_path / "export.json").write_text(json.dumps(summary))
    export.refuse_foreign_files(tmp_path, [ours])
    with pytest.raises(export.ExportError, match="not listed in its export.json"):
        export.refuse_foreign_files(tmp_path, [theirs])


def test_debug_model_output_depends_on_its_mel() -> None:
    """Otherwise every export and equality check on model=debug would pass vacuously."""
    from upsampler.recipe_support.build import build_generator

    generator = build_generator(compose_config("export", ["model=debug", "audio=16k_hop200"]))
    first, second = torch.randn(2, 1, NUM_MELS, 20, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        difference = (generator(first) - generator(second)).abs().max()
    assert difference > 1e-3
