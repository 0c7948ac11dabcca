"""The exported streaming steps of the benchmark's streaming section, written and verified.

For each chunk size, ``export_streaming`` writes the generator's step to a temporary
folder and :class:`~upsampler.export.OnnxStream` runs it; the section times these very
files beside the eager session and offline, after checking each stream against offline.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Callable, Iterator

import contextlib
import numpy as np
import torch
from torch import Tensor, nn

from upsampler.export import OnnxStream, export_streaming


@contextlib.contextmanager
def onnx_streams(
    generator: nn.Module, mel: Tensor, chunk_frames: list[int], num_threads: int,
    sample_rate: int,
) -> Iterator[dict[str, Callable[[], np.ndarray]]]:
    """``{"onnx_chunk_<c>": run}``: each ``run()`` streams ``mel`` (batch 1) through the
    exported step for ``c``-frame chunks and returns the audio; files removed on exit."""
    frames = mel.shape[-1]
    mel_np = mel.detach().cpu().numpy()
    with tempfile.TemporaryDirectory(prefix="stream_steps_") as folder:
        runs: dict[str, Callable[[], np.ndarray]] = {}
        for chunk in chunk_frames:
            path = export_streaming(generator, chunk, Path(folder) / f"chunk{chunk}.onnx",
                                    sample_rate=sample_rate)
            stream = OnnxStream(path, num_threads=num_threads, chunk_frames=chunk)

            def run(stream: OnnxStream = stream, chunk: int = chunk) -> np.ndarray:
                stream.reset()
                outs = [stream.step(mel_np[:, :, i : i + chunk]) for i in range(0, frames, chunk)]
                return np.concatenate(outs + [stream.flush()], axis=-1)

            runs[f"onnx_chunk_{chunk}"] = run
        yield runs


def max_abs_diff(audio: object, expected: Tensor) -> float:
    """``max |audio - expected|`` for a torch or numpy result."""
    if isinstance(audio, np.ndarray):
        audio = torch.from_numpy(audio)
    return (audio - expected.cpu()).abs().max().item()


__all__ = ["onnx_streams", "max_abs_diff"]
