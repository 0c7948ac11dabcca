"""Writers of the deployment files: ONNX, torch.export programs and TorchScript.

``exportable(module)`` returns an inference copy: eval mode, weight norm folded, no
gradients. Under capture (``torch.jit`` or ``torch.export``) ``conv_transpose1d`` skips its
Python-side checks and its autograd.Function and runs the plain column/scatter ops, which
both capture methods follow (see :mod:`upsampler.conv_transpose.capture`).

ONNX goes through ``torch.onnx.export(..., dynamo=True)`` with a dynamic batch and time
axis; ``export_program`` saves the ``torch.export`` capture itself (``.pt2``) with the same
axes. TorchScript (``export_torchscript``) stays for callers that ask for it: torch 2.13
deprecates ``torch.jit.trace`` / ``save`` / ``load`` in favour of ``torch.export`` and
``torch.compile``. The legacy TorchScript-based ONNX exporter (``dynamo=False``) is not
used: it exports our in-place strided adds of the scatter without writing them back, and
its graph is wrong.
Files are written to a temporary name in the target folder and renamed into place
(:func:`upsampler._atomic.atomic_write`).

``lowering`` picks how our transposed layer appears in the ONNX graph: ``"dense"`` (the
default) is our own formulation, a matrix product then pads, reshapes and adds (no
scatter op); ``"conv_transpose"`` lowers the layer to ONNX's ``ConvTranspose`` node (same
math, the runtime's own kernel). The rest of the model is the same either way, with
every plain ``nn.Conv1d`` written as a 2-D ``Conv`` (:class:`Conv1dAs2d`), which
onnxruntime runs with its faster blocked-layout kernels, and (``blocked_residuals``, on by
default) each HiFi-GAN MRF written so its residual blocks stay in that layout from the
first convolution to the last (:mod:`upsampler.export.onnx_layout`: same numbers, a few
identity 1x1 convolutions more in the file). Running a written file back is
:mod:`upsampler.export.runtime`.
"""

from __future__ import annotations

import contextlib
import copy
import logging
from pathlib import Path
from typing import Any, Iterator

import torch
from torch import Tensor, nn

from upsampler._atomic import PathLike, atomic_write
from upsampler.conv_transpose.dispatch import torch_conv_transpose
from upsampler.export.onnx_layout import with_2d_convs, with_blocked_residuals
from upsampler.layers.weight_norm import remove_weight_norm

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


def _dynamic_shapes() -> tuple[dict[int, Any]]:
    """``dynamic_shapes`` of a one-input capture: batch any size, time from
    ``MIN_EXPORT_LENGTH`` up (the ONNX and the torch.export writers share it)."""
    return ({
        BATCH_AXIS: torch.export.Dim("batch"),
        TIME_AXIS: torch.export.Dim("time", min=MIN_EXPORT_LENGTH),
    },)


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
    (:func:`upsampler.export.onnx_layout.with_blocked_residuals`; turn it off for a runtime
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
    lowered = torch_conv_transpose() if lowering == "conv_transpose" else contextlib.nullcontext()
    with lowered, quiet_onnx_logs():
        return atomic_write(path, lambda temp: torch.onnx.export(
            model, (example,), str(temp), input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
            dynamo=True, dynamic_shapes=_dynamic_shapes(), external_data=False, verbose=False,
            **onnx_kwargs,
        ))


def export_program(module: nn.Module, path: PathLike, example: Tensor,
                   **export_kwargs: Any) -> Path:
    """Write ``exportable(module)`` as a ``torch.export`` program (``.pt2``); return the path.

    A generator's program maps ``(B, num_mels, T)`` to ``(B, 1, T * hop)`` for any batch and
    any ``T >= MIN_EXPORT_LENGTH`` (a shorter input fails the program's shape guard);
    ``example`` is the ``(B, C, T)`` input it is captured with. ``export_kwargs`` go to
    :func:`torch.export.export` (e.g. ``strict``). Run it back with
    :func:`upsampler.export.runtime.run_program`.
    """
    _check_example(example)
    model = exportable(module)
    program = torch.export.export(model, (example,), dynamic_shapes=_dynamic_shapes(),
                                  **export_kwargs)
    return atomic_write(path, lambda temp: torch.export.save(program, temp))


__all__ = [
    "BATCH_AXIS",
    "INPUT_NAME",
    "LOWERINGS",
    "MIN_EXPORT_LENGTH",
    "OUTPUT_NAME",
    "QUIET_LOGGERS",
    "TIME_AXIS",
    "TORCHSCRIPT_METHODS",
    "PathLike",
    "exportable",
    "export_onnx",
    "export_program",
    "export_torchscript",
    "quiet_onnx_logs",
]
