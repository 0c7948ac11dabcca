"""A from-scratch 1-D transposed convolution on plain torch tensors.

Forward: one matrix product turns every input sample into a column of
``C_out * kernel_size`` values (one per output channel and kernel tap); a scatter
then adds the column of input sample ``t`` and tap ``k`` into output position
``t * stride + k * dilation - padding``, dropping positions outside the output.
Backward is the matching gather (an unfold of the output gradient) followed by
two matrix products. No convolution op of torch is called on either path.

The columns, scatter and gather live in :mod:`upsampler.columns`.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor

from upsampler.capture import is_capturing
from upsampler.columns import column_backward, columns, fold_batch, scatter
from upsampler.lengths import check_int, transposed_output_length


@torch.jit.unused
def check_conv_transpose_args(
    input: Tensor,
    weight: Tensor,
    bias: Optional[Tensor],
    stride: int,
    padding: int,
    output_padding: int,
    groups: int,
    dilation: int,
) -> None:
    """Raise ``TypeError``/``ValueError`` naming the first bad argument."""
    for name, value in (("input", input), ("weight", weight)):
        if not isinstance(value, Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
    if bias is not None and not isinstance(bias, Tensor):
        raise TypeError(f"bias must be a torch.Tensor or None, got {type(bias).__name__}")
    check_int("stride", stride, 1)
    check_int("padding", padding, 0)
    check_int("output_padding", output_padding, 0)
    check_int("groups", groups, 1)
    check_int("dilation", dilation, 1)
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
    if input.dim() not in (2, 3):
        raise ValueError(
            f"input must be 2-D (C_in, T) or 3-D (B, C_in, T), got shape {tuple(input.shape)}"
        )
    in_channels = input.shape[-2]
    if in_channels != weight.shape[0]:
        raise ValueError(
            f"input has {in_channels} channels but weight expects in_channels="
            f"{weight.shape[0]} (input shape {tuple(input.shape)})"
        )
    if in_channels % groups != 0:
        raise ValueError(f"in_channels={in_channels} must be divisible by groups={groups}")
    if input.shape[-1] < 1:
        raise ValueError(f"input must have at least one time step, got shape {tuple(input.shape)}")
    if bias is not None and bias.shape != (weight.shape[1] * groups,):
        raise ValueError(
            f"bias must have shape ({weight.shape[1] * groups},), got {tuple(bias.shape)}"
        )
    if input.dtype != weight.dtype or (bias is not None and bias.dtype != weight.dtype):
        raise TypeError(
            f"input, weight and bias must share a dtype, got input {input.dtype}, "
            f"weight {weight.dtype}, bias {None if bias is None else bias.dtype}"
        )
    transposed_output_length(
        input.shape[-1], weight.shape[-1], stride, padding, output_padding, dilation
    )


def conv_transpose1d_unchecked(
    x: Tensor,
    weight: Tensor,
    bias: Optional[Tensor],
    stride: int,
    padding: int,
    output_padding: int,
    groups: int,
    dilation: int,
) -> Tensor:
    """Columns then scatter on a batched ``(B, C_in, T)`` input, no argument checks.

    Differentiable through autograd's own rules; TorchScript and tracing use it.
    """
    batch, _, length = x.shape
    # graph capture keeps one layout for every length (no guard on the symbolic length)
    fold = not is_capturing() and fold_batch(batch, length, weight.shape[1] * groups * weight.shape[2])
    cols = columns(x, weight, groups, fold)
    return scatter(cols, bias, stride, padding, output_padding, dilation)


class _ConvTranspose1dFunction(torch.autograd.Function):
    """Forward scatter, backward gather, with explicit gradients."""

    @staticmethod
    def forward(ctx, x, weight, bias, stride, padding, output_padding, groups, dilation):
        ctx.save_for_backward(x, weight)
        ctx.conv_args = (stride, padding, output_padding, groups, dilation)
        ctx.has_bias = bias is not None
        return conv_transpose1d_unchecked(
            x, weight, bias, stride, padding, output_padding, groups, dilation
        )

    @staticmethod
    def backward(ctx, grad_output):
        x, weight = ctx.saved_tensors
        stride, padding, output_padding, groups, dilation = ctx.conv_args
        need_input, need_weight, need_bias = ctx.needs_input_grad[:3]
        grad_input, grad_weight = column_backward(
            grad_output, x, weight, stride, padding, output_padding, groups, dilation,
            need_input, need_weight,
        )
        grad_bias = grad_output.sum((0, 2)) if ctx.has_bias and need_bias else None
        return grad_input, grad_weight, grad_bias, None, None, None, None, None


@torch.jit.unused
def _apply_function(
    x: Tensor,
    weight: Tensor,
    bias: Optional[Tensor],
    stride: int,
    padding: int,
    output_padding: int,
    groups: int,
    dilation: int,
) -> Tensor:
    return _ConvTranspose1dFunction.apply(
        x, weight, bias, stride, padding, output_padding, groups, dilation
    )


def conv_transpose1d(
    input: Tensor,
    weight: Tensor,
    bias: Optional[Tensor] = None,
    stride: int = 1,
    padding: int = 0,
    output_padding: int = 0,
    groups: int = 1,
    dilation: int = 1,
) -> Tensor:
    """1-D transposed convolution, numerically equal to ``torch.nn.functional.conv_transpose1d``.

    Shapes: ``(B, C_in, T) -> (B, C_out, L_out)`` or unbatched ``(C_in, T) -> (C_out, L_out)``,
    ``weight`` ``(C_in, C_out // groups, K)``, ``bias`` ``(C_out,)``, with
    ``L_out = (T - 1) * stride - 2 * padding + dilation * (K - 1) + output_padding + 1``
    (see :mod:`upsampler.lengths`). Integer arguments only (no 1-tuples).
    """
    # the literal is_scripting() test lets TorchScript drop the Python-only branches
    capturing = is_capturing()
    if not torch.jit.is_scripting() and not capturing:
        check_conv_transpose_args(
            input, weight, bias, stride, padding, output_padding, groups, dilation
        )
    batched = input.dim() == 3
    x = input if batched else input.unsqueeze(0)
    if torch.jit.is_scripting() or capturing:
        out = conv_transpose1d_unchecked(
            x, weight, bias, stride, padding, output_padding, groups, dilation
        )
    else:
        out = _apply_function(x, weight, bias, stride, padding, output_padding, groups, dilation)
    return out if batched else out.squeeze(0)


__all__ = ["conv_transpose1d", "conv_transpose1d_unchecked", "check_conv_transpose_args"]
