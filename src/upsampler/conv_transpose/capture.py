"""Whether the code runs under graph capture (TorchScript, tracing, torch.compile / export).

Captured graphs take the unchecked, plain-autograd path of our ops: Python-side argument
checks would see symbolic sizes, and an ``autograd.Function`` does not decompose.
"""

from __future__ import annotations

import contextlib
from typing import Iterator

import torch

if hasattr(torch, "compiler") and hasattr(torch.compiler, "is_compiling"):
    from torch.compiler import is_compiling
else:  # torch < 2.3 has no torch.compiler.is_compiling

    def is_compiling() -> bool:
        """Always ``False`` before torch 2.3 (capture there is TorchScript/tracing only)."""
        return False


def is_capturing() -> bool:
    """``True`` while scripting, tracing, compiling or exporting."""
    return torch.jit.is_scripting() or torch.jit.is_tracing() or is_compiling()


_TORCH_CONV_TRANSPOSE = [False]  # set only inside ``torch_conv_transpose()``


@contextlib.contextmanager
def torch_conv_transpose() -> Iterator[None]:
    """While active, a captured (compiled / exported) transposed conv calls torch's own op.

    Only for the opt-in ONNX export that lowers our layer to ONNX's ``ConvTranspose`` node
    (``upsampler.export.export_onnx(..., lowering="conv_transpose")``); eager calls and
    every other capture keep our from-scratch formulation.
    """
    saved = _TORCH_CONV_TRANSPOSE[0]
    _TORCH_CONV_TRANSPOSE[0] = True
    try:
        yield
    finally:
        _TORCH_CONV_TRANSPOSE[0] = saved


@torch.jit.unused
def lowering_to_torch() -> bool:
    """Whether :func:`torch_conv_transpose` is active and the code runs under capture."""
    return _TORCH_CONV_TRANSPOSE[0] and is_compiling()


__all__ = ["is_capturing", "is_compiling", "lowering_to_torch", "torch_conv_transpose"]
