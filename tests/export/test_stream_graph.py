"""The exported streaming step: ONNX (onnxruntime) and torch.export equal ``model(mel)``.

Expected values: the model's own offline ``forward`` on the whole mel. Models at reduced
widths (the stream's structure does not depend on channels), except the shipped demo.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import Tensor, nn

from upsampler import BigVGANGenerator, HiFiGANGenerator
from upsampler.export import OnnxStream, export_streaming, weights_fingerprint
from upsampler.layers import UPSAMPLERS
from upsampler.models.pretrained import load_pretrained
from upsampler.streaming import StreamClosedError, StreamingGenerator
from upsampler.streaming.step import StreamStep

pytest.importorskip("onnxruntime")
NUM_MELS, FRAMES = 80, 29  # not a multiple of 8: the last chunk is partial
ATOL = 1e-5


def small(kind: str) -> nn.Module:
    torch.manual_seed(0)
    if kind == "bigvgan":
        model = BigVGANGenerator(upsample_initial_channel=16, resblock_kernel_sizes=[3],
                                 resblock_dilation_sizes=[[1, 3]])
    elif kind == "v3":
        model = HiFiGANGenerator.from_preset("v3", upsample_initial_channel=16)
    else:
        model = HiFiGANGenerator.from_preset(
            "v1", upsample_initial_channel=16, resblock_kernel_sizes=(3, 7),
            resblock_dilation_sizes=((1, 3, 5), (1, 3, 5)), upsampler=kind)
    return model.eval()


def mel_of(batch: int, frames: int = FRAMES, seed: int = 1) -> Tensor:
    return torch.randn(batch, NUM_MELS, frames, generator=torch.Generator().manual_seed(seed))


def random_sizes(total: int, seed: int) -> list[int]:
    rng = np.random.default_rng(seed)
    sizes = []
    while sum(sizes) < total:
        sizes.append(int(min(rng.integers(0, 12), total - sum(sizes))))
    return sizes


def run_stream(stream: OnnxStream, mel: np.ndarray, sizes: list[int]) -> np.ndarray:
    outs, start = [], 0
    for size in sizes:
        outs.append(stream.step(mel[..., start : start + size]))
        start += size
    return np.concatenate(outs + [stream.flush()], axis=-1)


@pytest.fixture(scope="module")
def v1_graphs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The small V1 at one-frame chunks (batch 1, one graph) and eight-frame chunks (batch
    2, with the steady-state branch: warm-up and flush in one graph, the rest in the other)."""
    folder = tmp_path_factory.mktemp("stream")
    model = small("transposed")
    return {"model": model,
            "chunk1": export_streaming(model, 1, folder / "v1_chunk1.onnx", steady_branch=False),
            "chunk8": export_streaming(model, 8, folder / "v1_chunk8.onnx", batch_size=2)}


def test_one_frame_graph_equals_offline_unbatched(v1_graphs: dict) -> None:
    model, mel = v1_graphs["model"], mel_of(1)
    stream = OnnxStream(v1_graphs["chunk1"], chunk_frames=1)
    with torch.no_grad():
        expected = model(mel[0]).numpy()
    got = run_stream(stream, mel[0].numpy(), [1] * FRAMES)
    assert got.shape == (1, FRAMES * model.hop_length)
    np.testing.assert_allclose(got, expected, rtol=0, atol=ATOL)


def test_eight_frame_graph_equals_offline_batched_at_any_arrival(v1_graphs: dict) -> None:
    model, mel = v1_graphs["model"], mel_of(2, frames=37, seed=2)
    stream = OnnxStream(v1_graphs["chunk8"])
    with torch.no_grad():
        expected = model(mel).numpy()
    for sizes in ([8] * 5, random_sizes(37, 3)):
        stream.reset()
        got = run_stream(stream, mel.numpy(), sizes)
        np.testing.assert_allclose(got, expected, rtol=0, atol=ATOL)


def test_bad_input_is_one_line_and_leaves_the_stream(v1_graphs: dict) -> None:
    model, mel = v1_graphs["model"], mel_of(2).numpy()
    stream = OnnxStream(v1_graphs["chunk8"])
    first = stream.step(mel[..., :11])
    bad = [(mel[:, :40, :3], ValueError, "num_mels=80"), (mel[:1, :, :3], ValueError, "batch"),
           (mel[..., :3].astype(np.float64), TypeError, "float32"),
           (np.full((2, NUM_MELS, 3), np.nan, np.float32), ValueError, "NaN")]
    for chunk, error, words in bad:
        with pytest.raises(error, match=words) as caught:
            stream.step(chunk)
        assert "\n" not in str(caught.value)
    got = np.concatenate([first, stream.step(mel[..., 11:]), stream.flush()], axis=-1)
    with torch.no_grad():
        np.testing.assert_allclose(got, model(torch.from_numpy(mel)).numpy(), rtol=0, atol=ATOL)
    with pytest.raises(StreamClosedError, match="reset"):
        stream.step(mel[..., :1])
    with pytest.raises(ValueError, match="chunk_frames=8, not 1"):
        OnnxStream(v1_graphs["chunk8"], chunk_frames=1)
    with pytest.raises(ValueError, match="fingerprint"):
        OnnxStream(v1_graphs["chunk8"], fingerprint=weights_fingerprint(small("v3")))
    assert OnnxStream(v1_graphs["chunk8"], fingerprint=weights_fingerprint(model)).delay > 0


HOST_LOOP = """
import json, sys
sys.modules["torch"] = None  # the host has no torch: `import torch` raises ImportError
import numpy as np, onnxruntime as ort
path, mel_path, out_path = sys.argv[1:]
session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
meta = json.loads(session.get_modelmeta().custom_metadata_map["upsampler.stream"])
chunk, hop, delay = meta["chunk_frames"], meta["hop_length"], meta["delay_samples"]
state = {s["input"]: np.zeros(s["shape"], s["dtype"]) for s in meta["states"]}
mel = np.load(mel_path)
total, start, audio = mel.shape[-1] * hop, 0, []
while sum(a.shape[-1] for a in audio) < delay + total:
    piece = mel[..., start : start + chunk]
    frames = piece.shape[-1]
    piece = np.pad(piece, ((0, 0), (0, 0), (0, chunk - frames)))
    out, *new = session.run(None, {"mel": piece, "frames": np.array(frames, np.int64), **state})
    state = {s["input"]: value for s, value in zip(meta["states"], new)}
    audio.append(out)
    start += chunk
np.save(out_path, np.concatenate(audio, axis=-1)[..., delay : delay + total])
"""


def test_a_numpy_host_without_torch_streams_the_file(v1_graphs: dict, tmp_path: Path) -> None:
    model, mel = v1_graphs["model"], mel_of(2, frames=21, seed=4)
    np.save(tmp_path / "mel.npy", mel.numpy())
    result = subprocess.run(
        [sys.executable, "-c", HOST_LOOP, str(v1_graphs["chunk8"]), str(tmp_path / "mel.npy"),
         str(tmp_path / "audio.npy")], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    with torch.no_grad():
        expected = model(mel).numpy()
    np.testing.assert_allclose(np.load(tmp_path / "audio.npy"), expected, rtol=0, atol=ATOL)


@pytest.mark.parametrize("kind", ["bigvgan", "linear_conv"])
def test_replicate_padded_models_stream_exactly_in_onnxruntime(kind: str, tmp_path: Path) -> None:
    model, mel = small(kind), mel_of(1, seed=5)
    path = export_streaming(model, 4, tmp_path / f"{kind}.onnx", steady_branch=False)
    with torch.no_grad():
        expected = model(mel).numpy()
    got = run_stream(OnnxStream(path), mel.numpy(), random_sizes(FRAMES, 6))
    np.testing.assert_allclose(got, expected, rtol=0, atol=ATOL)


def test_shipped_demo_streams_exactly_in_onnxruntime_and_eager(tmp_path: Path) -> None:
    model, _ = load_pretrained("demo")
    model.eval()
    mel = mel_of(1, frames=40, seed=6)
    path = export_streaming(model, 8, tmp_path / "demo.onnx", steady_branch=False)
    with torch.no_grad():
        expected = model(mel)
        session = StreamingGenerator(model)
        eager = torch.cat([session.step(mel[..., :13]), session.step(mel[..., 13:]),
                           session.flush()], dim=-1)
    torch.testing.assert_close(eager, expected, rtol=0, atol=ATOL)
    got = run_stream(OnnxStream(path), mel.numpy(), [8] * 5)
    np.testing.assert_allclose(got, expected.numpy(), rtol=0, atol=ATOL)


def drive_step(step: nn.Module, mel: Tensor, chunk: int, delay: int, hop: int,
               state: list[Tensor]) -> Tensor:
    """The host loop on a torch step (eager StreamStep or a loaded .pt2)."""
    total, start, outs = mel.shape[-1] * hop, 0, []
    while sum(o.shape[-1] for o in outs) < delay + total:
        piece = mel[..., start : start + chunk]
        frames = piece.shape[-1]
        piece = torch.nn.functional.pad(piece, (0, chunk - frames))
        audio, *state = step(piece, torch.tensor(frames), *state)
        outs.append(audio)
        start += chunk
    return torch.cat(outs, dim=-1)[..., delay : delay + total]


@pytest.mark.parametrize("kind", [*UPSAMPLERS, "v3", "bigvgan"])
def test_the_captured_step_equals_offline_for_every_kind(kind: str) -> None:
    """What the export captures, run eagerly at 1 and 3 frames (fixed shapes, tensor clock)."""
    model, mel = small(kind), mel_of(2, frames=11, seed=7)
    with torch.no_grad():
        expected = model(mel)
        for chunk in (1, 3):
            step = StreamStep(model, chunk, batch_size=2)
            state = step.initial_state(mel.dtype, mel.device)
            got = drive_step(step, mel, chunk, step.delay, step.hop_length, state)
            torch.testing.assert_close(got, expected, rtol=0, atol=ATOL)


def test_torch_export_program_streams_exactly(tmp_path: Path) -> None:
    model, mel = small("v3"), mel_of(1, seed=8)
    path = export_streaming(model, 8, tmp_path / "v3.pt2")
    extra = {"metadata.json": ""}
    program = torch.export.load(str(path), extra_files=extra)
    meta = json.loads(extra["metadata.json"])
    with torch.no_grad():
        state = [torch.zeros(s["shape"], dtype=getattr(torch, s["dtype"]))
                 for s in meta["states"]]
        got = drive_step(program.module(), mel, 8, meta["delay_samples"], meta["hop_length"],
                         state)
        torch.testing.assert_close(got, model(mel), rtol=0, atol=ATOL)


def test_export_streaming_refuses_bad_arguments(tmp_path: Path) -> None:
    model = small("transposed")
    with pytest.raises(ValueError, match="chunk_frames"):
        export_streaming(model, 0, tmp_path / "x.onnx")
    with pytest.raises(ValueError, match="must end in one of"):
        export_streaming(model, 8, tmp_path / "x.bin")
    assert list(tmp_path.iterdir()) == []


def test_export_streaming_names_the_torch_it_needs(monkeypatch: pytest.MonkeyPatch,
                                                   tmp_path: Path) -> None:
    monkeypatch.setattr(torch, "__version__", "2.4.1+cpu")
    with pytest.raises(RuntimeError, match=r"^export_streaming needs torch >= 2\.5, got 2\.4\.1"):
        export_streaming(small("transposed"), 8, tmp_path / "x.onnx")
