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

import operator
from typing import Optional, Tuple

import torch
from torch import Tensor

from upsampler.capture import is_capturing, is_compiling
from upsampler.columns import column_backward, columns, fold_batch, scatter
from upsampler.index_scatter import use_index_scatter
from upsampler.lengths import ceil_div, check_int
from upsampler.long_kernel import use_windows, windows_backward, windows_forward
from upsampler.overlap_add import dense_column_backward, dense_conv_transpose1d, functorch_active


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


@torch.jit.unused
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

    Differentiable through autograd's own rules; TorchScript and tracing use it. Under a
    ``torch.func`` transform, ``torch.compile`` and ``torch.export`` (hence the ONNX export)
    the overlap-add is the out-of-place one of :mod:`upsampler.overlap_add`: a transform
    cannot write batched values into a buffer, the compiler fuses pads and adds better than
    strided in-place writes, and an exported graph of pads and adds has no index scatter.
    """
    if not torch.jit.is_scripting():
        # compiling first: dynamo never traces the functorch query
        if is_compiling() or functorch_active():
            return dense_conv_transpose1d(
                x, weight, bias, stride, padding, output_padding, groups, dilation
            )
    batch, _, length = x.shape
    kernel_size = weight.shape[2]
    if not torch.jit.is_scripting():
        columns_total = batch * weight.shape[1] * groups * kernel_size * length
        if not is_capturing() and use_windows(kernel_size, stride, dilation, columns_total):
            return windows_forward(x, weight, bias, stride, padding, output_padding, groups, dilation)
    # graph capture keeps one layout for every length (no guard on the symbolic length)
    fold = False
    if not torch.jit.is_scripting():
        if not is_capturing():
            fold = fold_batch(batch, length, weight.shape[1] * groups * kernel_size)
            fold = fold and not use_index_scatter(batch, weight.shape[1] * groups, kernel_size, length)
    cols = columns(x, weight, groups, fold)
    return scatter(cols, bias, stride, padding, output_padding, dilation)


class _ConvTranspose1dFunction(torch.autograd.Function):
    """Forward scatter, backward gather, with explicit gradients.

    Works under ``torch.func``: ``setup_context`` keeps ``forward`` free of ``ctx``, ``jvp``
    is the forward-mode rule (the op is linear in ``x`` and in ``weight``), and the vmap
    rule is generated (forward and backward take the out-of-place path under a transform).
    """

    generate_vmap_rule = True

    @staticmethod
    def forward(x, weight, bias, stride, padding, output_padding, groups, dilation):
        return conv_transpose1d_unchecked(
            x, weight, bias, stride, padding, output_padding, groups, dilation
        )

    @staticmethod
    def setup_context(ctx, inputs, output):
        x, weight, bias, stride, padding, output_padding, groups, dilation = inputs
        ctx.save_for_backward(x, weight)
        ctx.save_for_forward(x, weight)
        ctx.conv_args = (stride, padding, output_padding, groups, dilation)
        ctx.has_bias = bias is not None

    @staticmethod
    def backward(ctx, grad_output):
        x, weight = ctx.saved_tensors
        stride, padding, output_padding, groups, dilation = ctx.conv_args
        need_input, need_weight, need_bias = ctx.needs_input_grad[:3]
        backward = column_backward
        if functorch_active():
            backward = dense_column_backward
        elif use_windows(weight.shape[2], stride, dilation,
                         x.shape[0] * grad_output.shape[1] * weight.shape[2] * x.shape[2]):
            backward = windows_backward
        grad_input, grad_weight = backward(
            grad_output, x, weight, stride, padding, output_padding, groups, dilation,
            need_input, need_weight,
        )
        grad_bias = grad_output.sum((0, 2)) if ctx.has_bias and need_bias else None
        return grad_input, grad_weight, grad_bias, None, None, None, None, None

    @staticmethod
    def jvp(ctx, x_tangent, weight_tangent, bias_tangent, *_):
        x, weight = ctx.saved_tensors
        args = ctx.conv_args
        (stride, padding, output_padding, groups, dilation) = args
        tangent = None
        if x_tangent is not None:
            tangent = conv_transpose1d_unchecked(x_tangent, weight, None, *args)
        if weight_tangent is not None:
            part = conv_transpose1d_unchecked(x, weight_tangent, None, *args)
            tangent = part if tangent is None else tangent + part
        if bias_tangent is not None:
            part = bias_tangent.view(1, -1, 1)
            tangent = part if tangent is None else tangent + part
        return tangent


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


def _needs_grad(x: Tensor, weight: Tensor, bias: Optional[Tensor]) -> bool:
    """Whether autograd records this call (else the Function's bookkeeping is skipped)."""
    if not torch.is_grad_enabled():
        return False
    return x.requires_grad or weight.requires_grad or (bias is not None and bias.requires_grad)


def run_checked(
    input: Tensor,
    weight: Tensor,
    bias: Optional[Tensor],
    stride: int,
    padding: int,
    output_padding: int,
    groups: int,
    dilation: int,
) -> Tensor:
    """The op on checked arguments, batched ``(B, C_in, T)`` or unbatched ``(C_in, T)``."""
    batched = input.dim() == 3
    x = input if batched else input.unsqueeze(0)
    if torch.jit.is_scripting() or is_capturing() or not _needs_grad(x, weight, bias):
        out = conv_transpose1d_unchecked(
            x, weight, bias, stride, padding, output_padding, groups, dilation
        )
    else:
        out = _apply_function(x, weight, bias, stride, padding, output_padding, groups, dilation)
    return out if batched else out.squeeze(0)


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
    (see :mod:`upsampler.lengths`). Integer arguments only (no 1-tuples); numpy integers
    and 0-d integer tensors count as integers.
    """
    # the literal is_scripting() test lets TorchScript drop the Python-only branches
    if not torch.jit.is_scripting() and not is_capturing():
        stride, padding, output_padding, groups, dilation = check_conv_transpose_args(
            input, weight, bias, stride, padding, output_padding, groups, dilation
        )
    return run_checked(input, weight, bias, stride, padding, output_padding, groups, dilation)


__all__ = [
    "as_int", "check_conv_transpose_args", "check_input", "conv_transpose1d",
    "conv_transpose1d_unchecked", "run_checked", "shortest_input",
]
