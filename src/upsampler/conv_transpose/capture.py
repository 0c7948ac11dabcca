"""Whether the code runs under graph capture (TorchScript, tracing, torch.compile / export).

Captured graphs take the unchecked, plain-autograd path of our ops: Python-side argument
checks would see symbolic sizes, and an ``autograd.Function`` does not decompose. The op asks
through :mod:`upsampler.conv_transpose.dispatch`; layers with their own capture paths ask here.
"""

from __future__ import annotations

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


__all__ = ["is_capturing", "is_compiling"]
