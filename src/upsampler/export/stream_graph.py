"""Streaming that leaves Python: one exported step per chunk size, and a runner for it.

``export_streaming(model, chunk_frames, path)`` writes the step of
:class:`upsampler.streaming.step.StreamStep` as ONNX (``.onnx``) or a ``torch.export``
program (``.pt2``). The ONNX file is all a host needs: inputs ``mel`` ``(B, num_mels,
chunk)`` float32, ``frames`` ``()`` int64, ``state_in_<k>``; outputs ``audio`` ``(B, 1,
chunk * hop)``, ``state_out_<k>``; metadata (JSON under ``upsampler.stream``): chunk
frames, hop, delay and look-ahead, sample rate, num_mels, batch, every state's name, shape
and dtype, and a fingerprint of the weights. A host loop (numpy + onnxruntime)::

    state = {f"state_in_{k}": np.zeros(shape, dtype) for k, (shape, dtype) in ...}
    for each chunk (zero-padded to chunk frames; frames = real ones, 0 once ended):
        audio, *new = session.run(None, {"mel": chunk, "frames": frames, **state})
        state = {f"state_in_{k}": s for k, s in enumerate(new)}
    audio = concatenated[..., delay : delay + total_frames * hop]

:class:`OnnxStream` is that loop with the checks; the README shows it for other hosts.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from pathlib import Path
from typing import Any, Optional

import torch
from torch import Tensor, nn

from upsampler._atomic import PathLike, atomic_write
from upsampler.conv_transpose.dispatch import torch_conv_transpose
from upsampler.export.onnx_branches import with_steady_branch
from upsampler.export.writers import exportable, quiet_onnx_logs
from upsampler.lengths import check_int, look_ahead_frames
from upsampler.streaming.step import StreamStep

METADATA_KEY = "upsampler.stream"
MEL_NAME, FRAMES_NAME, AUDIO_NAME = "mel", "frames", "audio"
STATE_IN, STATE_OUT = "state_in_{}", "state_out_{}"
SUFFIXES = (".onnx", ".pt2")
MIN_TORCH = (2, 5)  # torch.onnx.export(dynamo=True) and torch.export.save of this graph
DEFAULT_SAMPLE_RATE = 22050


def weights_fingerprint(model: nn.Module) -> str:
    """SHA-256 (16 hex digits) of ``model``'s weights with weight norm folded."""
    digest = hashlib.sha256()
    for name, tensor in exportable(model).state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def _check_torch() -> None:
    version = tuple(int(part) for part in torch.__version__.split("+")[0].split(".")[:2])
    if version < MIN_TORCH:
        raise RuntimeError(
            f"export_streaming needs torch >= {'.'.join(map(str, MIN_TORCH))}, "
            f"got {torch.__version__}"
        )


def stream_metadata(step: StreamStep, sample_rate: int, fingerprint: str) -> dict[str, Any]:
    """What a host needs to run the step: sizes, delay, state names, shapes, dtypes."""
    dtypes = ["int64"] * 2 + ["float32"] * (len(step.state_shapes) - 2)
    return {
        "chunk_frames": step.chunk_frames, "hop_length": step.hop_length,
        "num_mels": step.num_mels, "batch_size": step.batch_size,
        "delay_samples": step.delay,
        "look_ahead_frames": look_ahead_frames(step.delay, step.hop_length),
        "sample_rate": sample_rate, "fingerprint": fingerprint,
        "states": [{"name": name, "input": STATE_IN.format(k), "output": STATE_OUT.format(k),
                    "shape": list(shape), "dtype": dtype}
                   for k, (name, shape, dtype) in enumerate(
                       zip(step.state_names, step.state_shapes, dtypes))],
    }


def export_streaming(
    model: nn.Module,
    chunk_frames: int,
    path: PathLike,
    batch_size: int = 1,
    sample_rate: int = DEFAULT_SAMPLE_RATE,
    lowering: str = "conv_transpose",
    optimize: bool = False,
    steady_branch: bool = True,
) -> Path:
    """Write ``model``'s streaming step for chunks of ``chunk_frames`` mel frames.

    ``path`` ends in ``.onnx`` (onnxruntime, any host language) or ``.pt2``
    (``torch.export``; load with ``torch.export.load(path).module()``, call it as
    :class:`StreamStep`). The step covers warm-up, steady state and flush; streamed
    output equals ``model(mel)`` (see the module docstring for the loop). ``lowering``:
    ``"conv_transpose"`` (the runtime's own transposed-conv kernel, fastest on the small
    chunks of a stream) or ``"dense"`` (this package's formulation). ``steady_branch``
    (ONNX) adds the step without the padding fix-up for the calls where no window reaches
    an edge (:mod:`upsampler.export.onnx_branches`: a sixth faster on small chunks, twice
    the export time); ``optimize`` runs the exporter's own optimiser (onnxruntime optimises
    at load anyway). Needs torch >= 2.5; ONNX also needs ``onnx`` and ``onnxscript``.
    """
    _check_torch()
    check_int("chunk_frames", chunk_frames, 1)
    check_int("batch_size", batch_size, 1)
    check_int("sample_rate", sample_rate, 1)
    path = Path(path)
    if path.suffix not in SUFFIXES:
        raise ValueError(f"path must end in one of {SUFFIXES}, got {str(path)!r}")
    if lowering not in ("conv_transpose", "dense"):
        raise ValueError(f"lowering must be 'conv_transpose' or 'dense', got {lowering!r}")
    step = StreamStep(exportable(model), chunk_frames, batch_size).eval()
    metadata = stream_metadata(step, sample_rate, weights_fingerprint(model))
    weight = next(step.parameters())
    mel = torch.zeros(batch_size, step.num_mels, chunk_frames, dtype=weight.dtype)
    args = (mel, torch.tensor(chunk_frames), *step.initial_state(weight.dtype, weight.device))
    lowered = torch_conv_transpose() if lowering == "conv_transpose" else contextlib.nullcontext()
    with lowered, torch.no_grad():
        if path.suffix == ".pt2":
            program = torch.export.export(step, args, strict=False)
            extra = {"metadata.json": json.dumps(metadata)}
            return atomic_write(path, lambda temp: torch.export.save(
                program, str(temp), extra_files=extra))
        edge = _onnx_model(step, args, optimize)
        if steady_branch:
            step.edges = False  # the same step without the padding fix-up
            steady = _onnx_model(step, args, optimize)
            edge = with_steady_branch(edge, steady, step.stream.warmup, chunk_frames,
                                      STATE_IN.format(0), STATE_IN.format(1), FRAMES_NAME)
    entry = edge.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, json.dumps(metadata)
    import onnx

    return atomic_write(path, lambda temp: onnx.save_model(edge, str(temp)))


def _onnx_model(step: StreamStep, args: tuple[Tensor, ...], optimize: bool) -> Any:
    """``step`` exported by the dynamo exporter, as an ``onnx.ModelProto``."""
    names = [STATE_IN.format(k) for k in range(len(step.state_names))]
    outputs = [STATE_OUT.format(k) for k in range(len(step.state_names))]
    with quiet_onnx_logs():
        program = torch.onnx.export(
            step, args, input_names=[MEL_NAME, FRAMES_NAME, *names],
            output_names=[AUDIO_NAME, *outputs], dynamo=True, external_data=False,
            verbose=False, optimize=optimize,
        )
    return program.model_proto

__all__ = ["export_streaming", "stream_metadata", "weights_fingerprint", "METADATA_KEY"]
