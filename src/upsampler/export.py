"""Deployment: TorchScript and ONNX files of our layers and generators, checked against eager.

``exportable(module)`` returns an inference copy: eval mode, weight norm folded, no
gradients. Under capture (``torch.jit`` or ``torch.export``) ``conv_transpose1d`` skips its
Python-side checks and its autograd.Function and runs the plain column/scatter ops, which
both capture methods follow (see :mod:`upsampler.capture`).

ONNX goes through ``torch.onnx.export(..., dynamo=True)`` with a dynamic batch and time
axis. The legacy TorchScript-based exporter (``dynamo=False``) is not used: it exports our
in-place strided adds of the scatter without writing them back, and its graph is wrong.
Files are written to a temporary name in the target folder and renamed into place
(:func:`upsampler.files.atomic_write`).
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any, Union

import torch
from torch import Tensor, nn

from upsampler.files import atomic_write
from upsampler.layers.weight_norm import remove_weight_norm

PathLike = Union[str, "os.PathLike[str]"]
TORCHSCRIPT_METHODS = ("trace", "script")
BATCH_AXIS, TIME_AXIS = 0, 2
INPUT_NAME, OUTPUT_NAME = "input", "output"
# torch.export guards ``T - 1 != 1`` inside the scatter's strided views (a size-1 slice has
# no stride to trace), so the dynamic time axis is declared from 3 samples/frames up
MIN_EXPORT_LENGTH = 3


def exportable(module: nn.Module) -> nn.Module:
    """An eval-mode copy with weight norm folded and gradients off, ready to capture.

    The original module is not changed. Outputs equal the original's in eval mode.
    """
    if not isinstance(module, nn.Module):
        raise TypeError(f"module must be an nn.Module, got {type(module).__name__}")
    module = copy.deepcopy(module).eval()
    remove_weight_norm(module)
    for param in module.parameters():
        param.requires_grad_(False)
    return module


def _check_example(example: Tensor) -> None:
    if not isinstance(example, Tensor) or example.dim() != 3:
        shape = tuple(example.shape) if isinstance(example, Tensor) else type(example).__name__
        raise ValueError(f"example must be a (B, C, T) tensor, got {shape}")
    if example.shape[0] < 2 or example.shape[-1] < MIN_EXPORT_LENGTH:
        raise ValueError(
            f"example must have batch >= 2 and T >= {MIN_EXPORT_LENGTH} so neither axis is "
            f"specialised to a constant, got shape {tuple(example.shape)}"
        )


def export_torchscript(
    module: nn.Module, path: PathLike, example: Tensor, method: str = "trace"
) -> Path:
    """Write ``exportable(module)`` as TorchScript (``trace`` or ``script``); return the path.

    ``example`` is the ``(B, C, T)`` input used for tracing (any length works afterwards).
    """
    if method not in TORCHSCRIPT_METHODS:
        raise ValueError(f"method must be one of {TORCHSCRIPT_METHODS}, got {method!r}")
    _check_example(example)
    model = exportable(module)
    with torch.no_grad():
        scripted = torch.jit.trace(model, example) if method == "trace" else torch.jit.script(model)
    return atomic_write(path, lambda temp: torch.jit.save(scripted, str(temp)))


def export_onnx(module: nn.Module, path: PathLike, example: Tensor, **onnx_kwargs: Any) -> Path:
    """Write ``exportable(module)`` as ONNX with dynamic batch and time axes; return the path.

    Input ``"input"`` ``(B, C, T)``, output ``"output"``; ``onnx_kwargs`` go to
    ``torch.onnx.export`` (e.g. ``opset_version``). Needs ``onnx`` and ``onnxscript``.
    """
    _check_example(example)
    model = exportable(module)
    dims = {
        BATCH_AXIS: torch.export.Dim("batch"),
        TIME_AXIS: torch.export.Dim("time", min=MIN_EXPORT_LENGTH),
    }
    return atomic_write(path, lambda temp: torch.onnx.export(
        model, (example,), str(temp), input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
        dynamo=True, dynamic_shapes=(dims,), external_data=False, verbose=False,
        **onnx_kwargs,
    ))


def run_onnx(path: PathLike, input: Tensor) -> Tensor:
    """Run an exported file in onnxruntime (CPU): ``(B, C, T)`` float tensor in, tensor out."""
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (output,) = session.run(None, {INPUT_NAME: input.detach().cpu().numpy()})
    return torch.from_numpy(output)


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
    "exportable",
    "export_onnx",
    "export_torchscript",
    "max_abs_error",
    "run_onnx",
    "run_torchscript",
]
