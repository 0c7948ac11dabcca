"""Deployment: TorchScript and ONNX files of our layers and generators, checked against eager.

``exportable(module)`` returns an inference copy: eval mode, weight norm folded, no
gradients. Under capture (``torch.jit`` or ``torch.export``) ``conv_transpose1d`` skips its
Python-side checks and its autograd.Function and runs the plain column/scatter ops, which
both capture methods follow (see :mod:`upsampler.capture`).

ONNX goes through ``torch.onnx.export(..., dynamo=True)`` with a dynamic batch and time
axis. The legacy TorchScript-based exporter (``dynamo=False``) is not used: it exports our
in-place strided adds of the scatter without writing them back, and its graph is wrong.
Files are written to a temporary name in the target folder and renamed into place
(:func:`upsampler._atomic.atomic_write`).

``lowering`` picks how our transposed layer appears in the ONNX graph: ``"dense"`` (the
default) is our own formulation, a matrix product then pads, reshapes and adds (no
scatter op); ``"conv_transpose"`` lowers the layer to ONNX's ``ConvTranspose`` node (same
math, the runtime's own kernel). The rest of the model is the same either way, with
every plain ``nn.Conv1d`` written as a 2-D ``Conv`` (:class:`Conv1dAs2d`), which
onnxruntime runs with its faster blocked-layout kernels, and (``blocked_residuals``, on by
default) each HiFi-GAN MRF written so its residual blocks stay in that layout from the
first convolution to the last (:mod:`upsampler.onnx_layout`: same numbers, a few identity
1x1 convolutions more in the file).
"""

from __future__ import annotations

import collections
import contextlib
import copy
import logging
import os
from pathlib import Path
from typing import Any, Iterator, Optional, Union

import torch
from torch import Tensor, nn

from upsampler.capture import torch_conv_transpose
from upsampler._atomic import atomic_write
from upsampler.layers.weight_norm import remove_weight_norm
from upsampler.onnx_layout import Conv1dAs2d, with_2d_convs, with_blocked_residuals

PathLike = Union[str, "os.PathLike[str]"]
TORCHSCRIPT_METHODS = ("trace", "script")
BATCH_AXIS, TIME_AXIS = 0, 2
INPUT_NAME, OUTPUT_NAME = "input", "output"
# torch.export guards ``T - 1 != 1`` inside the scatter's strided views (a size-1 slice has
# no stride to trace), so the dynamic time axis is declared from 3 samples/frames up
MIN_EXPORT_LENGTH = 3
LOWERINGS = ("dense", "conv_transpose")
# onnxscript's optimiser logs one INFO line per folded initializer (hundreds per generator)
QUIET_LOGGERS = ("onnxscript", "onnx_ir")


@contextlib.contextmanager
def quiet_onnx_logs(level: int = logging.WARNING) -> Iterator[None]:
    """Raise the ONNX exporter's and optimiser's loggers to ``level`` while active."""
    loggers = [logging.getLogger(name) for name in QUIET_LOGGERS]
    saved = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(level)
    try:
        yield
    finally:
        for logger, old in zip(loggers, saved):
            logger.setLevel(old)


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


def export_onnx(module: nn.Module, path: PathLike, example: Tensor, lowering: str = "dense",
                blocked_residuals: bool = True, **onnx_kwargs: Any) -> Path:
    """Write ``exportable(module)`` as ONNX with dynamic batch and time axes; return the path.

    Input ``"input"`` ``(B, C, T)``, output ``"output"``. ``lowering`` is ``"dense"`` (our
    formulation) or ``"conv_transpose"`` (ONNX's ``ConvTranspose`` node);
    ``blocked_residuals`` writes each MRF for onnxruntime's blocked CPU layout
    (:func:`upsampler.onnx_layout.with_blocked_residuals`; turn it off for a runtime
    without that layout, where its identity convolutions are only extra work);
    ``onnx_kwargs`` go to ``torch.onnx.export`` (e.g. ``opset_version``). Needs ``onnx``
    and ``onnxscript``.
    """
    if lowering not in LOWERINGS:
        raise ValueError(f"lowering must be one of {LOWERINGS}, got {lowering!r}")
    if not isinstance(blocked_residuals, bool):
        raise TypeError(f"blocked_residuals must be a bool, got {blocked_residuals!r}")
    _check_example(example)
    model = with_2d_convs(exportable(module))
    if blocked_residuals:
        with_blocked_residuals(model)
    dims = {
        BATCH_AXIS: torch.export.Dim("batch"),
        TIME_AXIS: torch.export.Dim("time", min=MIN_EXPORT_LENGTH),
    }
    lowered = torch_conv_transpose() if lowering == "conv_transpose" else contextlib.nullcontext()
    with lowered, quiet_onnx_logs():
        return atomic_write(path, lambda temp: torch.onnx.export(
            model, (example,), str(temp), input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
            dynamo=True, dynamic_shapes=(dims,), external_data=False, verbose=False,
            **onnx_kwargs,
        ))


def onnx_session(path: PathLike, num_threads: Optional[int] = None) -> Any:
    """An onnxruntime CPU session of ``path``: all graph optimisations, sequential execution,
    ``num_threads`` intra-op threads (None: onnxruntime's default) and one inter-op thread.

    With a thread count set, the pool's threads do not spin between ops: on a machine
    shared with other work a spinning thread takes cores the others need.
    """
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    if num_threads is not None:
        options.intra_op_num_threads, options.inter_op_num_threads = int(num_threads), 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


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
    "LOWERINGS",
    "Conv1dAs2d",
    "exportable",
    "export_onnx",
    "onnx_node_types",
    "onnx_session",
    "quiet_onnx_logs",
    "export_torchscript",
    "max_abs_error",
    "run_onnx",
    "run_torchscript",
    "with_2d_convs",
    "with_blocked_residuals",
]
