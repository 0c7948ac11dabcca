"""Running the deployment files back: onnxruntime, torch.export programs and TorchScript,
and their error against eager.

The files are the ones :mod:`upsampler.export.writers` writes: one input ``"input"``
``(B, C, T)`` and one output. onnxruntime and onnx are imported inside the functions that
need them, so importing this module (and ``upsampler.export``) does not load them.
"""

from __future__ import annotations

import collections
from typing import Any, Optional

import torch
from torch import Tensor

from upsampler.export.onnx_stream import onnx_session
from upsampler.export.writers import INPUT_NAME, PathLike


def run_onnx(path: PathLike, input: Tensor, num_threads: Optional[int] = None) -> Tensor:
    """Run an exported file in onnxruntime (CPU): ``(B, C, T)`` float tensor in, tensor out."""
    (output,) = onnx_session(path, num_threads).run(
        None, {INPUT_NAME: input.detach().cpu().numpy()})
    return torch.from_numpy(output)


def onnx_node_types(path: PathLike) -> dict[str, int]:
    """``{op_type: count}`` of an ONNX file's graph, most frequent first."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    return dict(collections.Counter(node.op_type for node in graph.node).most_common())


def run_program(path: PathLike, input: Tensor) -> Tensor:
    """Load a ``torch.export`` program (``.pt2``, :func:`~upsampler.export.export_program`)
    and run it under ``torch.no_grad``.

    A generator's program maps ``(B, num_mels, T)`` to ``(B, 1, T * hop)``; ``input`` must
    be on the device it was exported on (CPU for the recipe).
    """
    module = torch.export.load(str(path)).module()
    with torch.no_grad():
        return module(input)


def run_torchscript(path: PathLike, input: Tensor) -> Tensor:
    """Load a TorchScript file and run it under ``torch.no_grad``."""
    scripted = torch.jit.load(str(path), map_location=input.device)
    with torch.no_grad():
        return scripted(input)


def max_abs_error(output: Tensor, reference: Tensor) -> float:
    """Largest ``|output - reference|``; shapes must match."""
    if output.shape != reference.shape:
        raise ValueError(
            f"output shape {tuple(output.shape)} differs from reference {tuple(reference.shape)}"
        )
    return float((output.to(reference) - reference).abs().max())


__all__ = [
    "max_abs_error",
    "onnx_node_types",
    "onnx_session",
    "run_onnx",
    "run_program",
    "run_torchscript",
]
