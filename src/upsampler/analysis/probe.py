"""What an analysed module is: its upsampling strides, input channels, and a checked forward.

The analysis accepts three kinds of ``nn.Module``:

* one upsampler: ``ConvTranspose1d`` (ours or torch's), ``ResizeConv1d``, ``SubpixelConv1d``
  (anything ``make_upsampler`` builds): strides ``(s,)``;
* a stack: ``nn.Sequential`` / ``nn.ModuleList`` of upsamplers, applied in order with no
  activation in between (the linearised stack): strides of each layer in order;
* a generator with an ``upsample_rates`` attribute (``HiFiGANGenerator``): strides
  ``upsample_rates``, input channels ``num_mels``; run with its own ``forward``.

Anything else is "not an upsampler" and raises ``ValueError`` unless the caller passes
``strides`` and ``in_channels`` explicitly; :func:`run_module` then still checks that the
output is ``T * prod(strides)`` long.
"""

from __future__ import annotations

import math
from typing import Optional, Sequence

import torch
from torch import Tensor, nn

from upsampler.lengths import check_int


def _layer_stride(layer: nn.Module) -> Optional[int]:
    """The upsampling factor of one upsampler layer, ``None`` if it is not one."""
    scale_factor = getattr(layer, "scale_factor", None)
    if isinstance(scale_factor, int) and isinstance(layer, nn.Conv1d):
        return scale_factor
    if getattr(layer, "transposed", False) and hasattr(layer, "stride"):
        return int(layer.stride[0])
    return None


def _layers(module: nn.Module) -> Optional[list[nn.Module]]:
    if isinstance(module, (nn.Sequential, nn.ModuleList)):
        return list(module)
    return None


def upsampler_strides(
    module: nn.Module, strides: Optional[Sequence[int]] = None
) -> tuple[int, ...]:
    """Per-layer strides of ``module`` (see the module docstring), or checked ``strides``."""
    if strides is not None:
        found = tuple(strides)
        if len(found) == 0:
            raise ValueError("strides must name at least one layer, got an empty sequence")
        for stride in found:
            check_int("stride", stride, 1)
        return found
    if not isinstance(module, nn.Module):
        raise ValueError(f"module must be an nn.Module upsampler, got {type(module).__name__}")
    rates = getattr(module, "upsample_rates", None)
    if rates is not None:
        return upsampler_strides(module, tuple(int(rate) for rate in rates))
    layers = _layers(module)
    if layers is not None and len(layers) > 0:
        return tuple(stride for layer in layers for stride in upsampler_strides(layer))
    stride = _layer_stride(module)
    if stride is None:
        raise ValueError(
            f"module must be an upsampler (ConvTranspose1d, ResizeConv1d, SubpixelConv1d, a "
            f"Sequential/ModuleList of them, or a generator with upsample_rates), got "
            f"{type(module).__name__}; pass strides=... and in_channels=... to analyse it anyway"
        )
    return (stride,)


def input_channels(module: nn.Module, in_channels: Optional[int] = None) -> int:
    """Channels ``module`` expects: ``num_mels`` for a generator, else the first layer's."""
    if in_channels is not None:
        return check_int("in_channels", in_channels, 1)
    for name in ("num_mels", "in_channels"):
        value = getattr(module, name, None)
        if isinstance(value, int):
            return value
    layers = _layers(module)
    if layers:
        return input_channels(layers[0])
    raise ValueError(
        f"cannot tell how many input channels {type(module).__name__} takes; pass in_channels=..."
    )


def _forward(module: nn.Module, signal: Tensor) -> Tensor:
    layers = _layers(module)
    if isinstance(module, nn.ModuleList) and layers is not None:
        for layer in layers:
            signal = layer(signal)
        return signal
    return module(signal)


def run_module(module: nn.Module, signal: Tensor, strides: Sequence[int]) -> Tensor:
    """``module(signal)`` without gradients; ``(B, C_in, T) -> (B, C_out, T * prod(strides))``.

    A ``ModuleList`` runs its layers in order. Raises ``ValueError`` when the output is
    not 3-D or not exactly ``T * prod(strides)`` long (the module is not that upsampler).
    """
    hop = math.prod(strides)
    with torch.no_grad():
        output = _forward(module, signal)
    expected = signal.shape[-1] * hop
    if output.dim() != 3 or output.shape[-1] != expected:
        raise ValueError(
            f"module {type(module).__name__} is not an upsampler with strides {tuple(strides)}: "
            f"input of shape {tuple(signal.shape)} gave {tuple(output.shape)}, expected "
            f"(B, C_out, {expected})"
        )
    return output


def module_dtype(module: nn.Module) -> torch.dtype:
    """dtype of the module's first floating parameter (float32 when it has none)."""
    for parameter in module.parameters():
        if parameter.is_floating_point():
            return parameter.dtype
    return torch.float32


def module_device(module: nn.Module) -> torch.device:
    """Device of the module's first parameter (CPU when it has none)."""
    for parameter in module.parameters():
        return parameter.device
    return torch.device("cpu")
