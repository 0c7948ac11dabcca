"""Argument checks of the transposed convolution, with errors that name the argument.

The functional op checks everything on every call; ``ConvTranspose1d`` checks its
arguments once at construction and only the input per call (:func:`check_input`).
"""

from __future__ import annotations

import operator
from typing import Optional, Tuple

from torch import Tensor

from upsampler.lengths import ceil_div, check_int


def as_int(name: str, value: object, minimum: int) -> int:
    """``value`` as a plain int ``>= minimum``; ints, numpy ints and 0-d integer tensors pass.

    Anything with ``__index__`` except ``bool`` (torch accepts ``numpy.int64`` and integer
    tensors where it takes an int); floats, strings and bools raise ``TypeError`` naming ``name``.
    """
    if not isinstance(value, int) or isinstance(value, bool):
        if isinstance(value, bool) or not hasattr(type(value), "__index__"):
            raise TypeError(f"{name} must be an int, got {value!r} ({type(value).__name__})")
        try:
            value = operator.index(value)
        except (TypeError, RuntimeError) as error:
            raise TypeError(
                f"{name} must be an int, got {value!r} ({type(value).__name__})"
            ) from error
    return check_int(name, value, minimum)


def shortest_input(
    kernel_size: int, stride: int, padding: int, output_padding: int, dilation: int
) -> int:
    """The fewest input steps that leave at least one output sample (1 unless padding is large)."""
    span = dilation * (kernel_size - 1) + 1
    return max(1, 1 + ceil_div(2 * padding - output_padding - span + 1, stride))


def check_input(
    input: Tensor,
    weight: Tensor,
    bias: Optional[Tensor],
    stride: int,
    padding: int,
    output_padding: int,
    dilation: int,
) -> None:
    """Raise ``TypeError``/``ValueError`` for an input the (checked) weight cannot take."""
    if not isinstance(input, Tensor):
        raise TypeError(f"input must be a torch.Tensor, got {type(input).__name__}")
    shape = input.shape
    if len(shape) not in (2, 3):
        raise ValueError(f"input must be 2-D (C_in, T) or 3-D (B, C_in, T), got shape {tuple(shape)}")
    if shape[-2] != weight.shape[0]:
        raise ValueError(
            f"input has {shape[-2]} channels but weight expects in_channels="
            f"{weight.shape[0]} (input shape {tuple(shape)})"
        )
    kernel_size = weight.shape[2]
    shortest = shortest_input(kernel_size, stride, padding, output_padding, dilation)
    if shape[-1] < shortest:
        if shape[-1] < 1:
            raise ValueError(f"input must have at least one time step, got shape {tuple(shape)}")
        raise ValueError(
            f"input of {shape[-1]} time steps is too short for kernel_size={kernel_size}, "
            f"stride={stride}, padding={padding}, output_padding={output_padding}, "
            f"dilation={dilation}: it gives no output sample; the shortest allowed is {shortest}"
        )
    if input.dtype != weight.dtype or (bias is not None and bias.dtype != weight.dtype):
        raise TypeError(
            f"input, weight and bias must share a dtype, got input {input.dtype}, "
            f"weight {weight.dtype}, bias {None if bias is None else bias.dtype}"
        )
    if input.device != weight.device or (bias is not None and bias.device != weight.device):
        raise ValueError(
            f"input, weight and bias must be on one device, got input on {input.device}, "
            f"weight on {weight.device}, bias on {None if bias is None else bias.device}"
        )


def check_conv_transpose_args(
    input: Tensor,
    weight: Tensor,
    bias: Optional[Tensor],
    stride: int,
    padding: int,
    output_padding: int,
    groups: int,
    dilation: int,
) -> Tuple[int, int, int, int, int]:
    """Raise ``TypeError``/``ValueError`` naming the first bad argument.

    Returns ``(stride, padding, output_padding, groups, dilation)`` as plain ints.
    """
    for name, value in (("input", input), ("weight", weight)):
        if not isinstance(value, Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
    if bias is not None and not isinstance(bias, Tensor):
        raise TypeError(f"bias must be a torch.Tensor or None, got {type(bias).__name__}")
    stride = as_int("stride", stride, 1)
    padding = as_int("padding", padding, 0)
    output_padding = as_int("output_padding", output_padding, 0)
    groups = as_int("groups", groups, 1)
    dilation = as_int("dilation", dilation, 1)
    if output_padding >= max(stride, dilation):
        raise ValueError(
            f"output_padding must be smaller than either stride or dilation, got "
            f"output_padding={output_padding} with stride={stride}, dilation={dilation}"
        )
    if weight.dim() != 3:
        raise ValueError(
            f"weight must be 3-D (in_channels, out_channels // groups, kernel_size), "
            f"got shape {tuple(weight.shape)}"
        )
    if min(weight.shape) < 1:
        raise ValueError(f"weight must have no empty dimension, got shape {tuple(weight.shape)}")
    if input.dim() not in (2, 3):
        raise ValueError(
            f"input must be 2-D (C_in, T) or 3-D (B, C_in, T), got shape {tuple(input.shape)}"
        )
    if weight.shape[0] % groups != 0:
        raise ValueError(f"in_channels={weight.shape[0]} must be divisible by groups={groups}")
    if bias is not None and bias.shape != (weight.shape[1] * groups,):
        raise ValueError(
            f"bias must have shape ({weight.shape[1] * groups},), got {tuple(bias.shape)}"
        )
    check_input(input, weight, bias, stride, padding, output_padding, dilation)
    return stride, padding, output_padding, groups, dilation


__all__ = ["as_int", "check_conv_transpose_args", "check_input", "shortest_input"]
