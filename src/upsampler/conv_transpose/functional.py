"""A from-scratch 1-D transposed convolution on plain torch tensors.

Forward: one matrix product turns every input sample into a column of
``C_out * kernel_size`` values (one per output channel and kernel tap); an overlap-add
then puts the column of input sample ``t`` and tap ``k`` at output position
``t * stride + k * dilation - padding``, dropping positions outside the output.
Backward is the matching gather (an unfold of the output gradient) followed by two matrix
products. No convolution op of torch is called on either path (unless the ONNX export asks
for torch's op). :mod:`upsampler.conv_transpose.dispatch` names the kernel of each call;
this module runs it. Argument checks live in :mod:`upsampler.conv_transpose.checks`.
"""

from __future__ import annotations

from typing import Optional, Tuple

import torch
from torch import Tensor

from upsampler.conv_transpose import dispatch
from upsampler.conv_transpose.checks import (
    as_int,
    check_conv_transpose_args,
    check_input,
    shortest_input,
)
from upsampler.conv_transpose.dispatch import (
    BLOCKS, DENSE, DEPTHWISE, MATRIX, TORCH, WINDOWS, Route,
)
from upsampler.conv_transpose.kernels.blocks import block_gather, block_scatter
from upsampler.conv_transpose.kernels.columns import (
    FOLD, column_grads, column_grads_out_of_place, columns,
)
from upsampler.conv_transpose.kernels.dense import dense_gather, dense_scatter
from upsampler.conv_transpose.kernels.depthwise import depthwise_forward
from upsampler.conv_transpose.kernels.index import index_gather, index_scatter
from upsampler.conv_transpose.kernels.matrix import all_finite, matrix_gather, matrix_scatter
from upsampler.conv_transpose.kernels.windows import windows_backward, windows_forward

ConvArgs = Tuple[int, int, int, int, int]  # stride, padding, output_padding, groups, dilation


def _route(x: Tensor, weight: Tensor, args: ConvArgs, backward: bool) -> Route:
    stride, padding, output_padding, groups, dilation = args
    batch, in_channels, length = x.shape
    _, group_out, kernel_size = weight.shape
    path = dispatch.backward_path if backward else dispatch.forward_path
    return path(batch, in_channels, length, group_out, kernel_size, stride, padding,
                output_padding, groups, dilation, x.device.type)


def _with_bias(out: Tensor, bias: Optional[Tensor], in_place: bool) -> Tensor:
    if bias is None:
        return out
    return out.add_(bias.view(1, -1, 1)) if in_place else out + bias.view(1, -1, 1)


def run_path(x: Tensor, weight: Tensor, bias: Optional[Tensor], args: ConvArgs, route: Route,
             needs_grad: bool = False) -> Tensor:
    """The forward of ``route`` on a batched ``(B, C_in, T)`` input, unchecked."""
    stride, padding, output_padding, groups, dilation = args
    kernel, layout, captured = route
    if kernel == TORCH:
        return torch.conv_transpose1d(x, weight, bias, stride, padding, output_padding, groups, dilation)
    if kernel == WINDOWS:
        return windows_forward(x, weight, bias, stride, padding, output_padding, groups, dilation,
                               dispatch.limits().window_buffer_elements)
    if kernel == DEPTHWISE:
        return depthwise_forward(x, weight, bias, stride, padding, output_padding, dilation)
    cols = columns(x, weight, groups, layout)
    if kernel == DENSE:
        return _with_bias(dense_scatter(cols, stride, padding, output_padding, dilation), bias, False)
    if kernel == BLOCKS:
        # a bias written by ``out=`` is not differentiable, and a trace would record a write
        bias_out = not needs_grad and not captured
        return block_scatter(cols, bias, stride, padding, output_padding, dilation, bias_out)
    if kernel == MATRIX:
        out = matrix_scatter(cols, bias, stride, padding, output_padding, dilation)
        if all_finite(out):
            return out
        # one non-finite column spreads over the product's zeros: the indexed add places it
    out = index_scatter(cols, stride, padding, output_padding, dilation)
    return _with_bias(out, bias, True)


def conv_transpose1d_unchecked(
    x: Tensor, weight: Tensor, bias: Optional[Tensor], stride: int, padding: int,
    output_padding: int, groups: int, dilation: int,
) -> Tensor:
    """The op on a batched ``(B, C_in, T)`` input, no argument checks, the dispatch's path.

    Differentiable through autograd's own rules (tracing, ``torch.compile`` and
    ``torch.export`` take it).
    """
    args = (stride, padding, output_padding, groups, dilation)
    needs_grad = dispatch.records_grad(x, weight, bias)
    return run_path(x, weight, bias, args, _route(x, weight, args, False), needs_grad)


def _gather(grad_output: Tensor, kernel_size: int, length: int, args: ConvArgs, route: Route) -> Tensor:
    stride, padding, output_padding, _, dilation = args
    kernel, layout, _ = route
    gather_args = (kernel_size, length, stride, padding, output_padding, dilation)
    if kernel == DENSE:
        return dense_gather(grad_output, *gather_args)
    if kernel == BLOCKS:
        return block_gather(grad_output, *gather_args, layout == FOLD)
    if kernel == MATRIX:
        cols = matrix_gather(grad_output, *gather_args)
        if all_finite(cols):
            return cols
        # as in the forward: columns with a non-finite value are gathered again by index
    return index_gather(grad_output, *gather_args)


def _backward(ctx, grad_output: Tensor):
    """Both Functions' backward: the dispatch's gather, then the matrix products."""
    x, weight = ctx.saved_tensors
    args = ctx.conv_args
    stride, padding, output_padding, groups, dilation = args
    need_input, need_weight, need_bias = ctx.needs_input_grad[:3]
    route = _route(x, weight, args, backward=True)
    if route.kernel == WINDOWS:
        grad_input, grad_weight = windows_backward(
            grad_output, x, weight, stride, padding, output_padding, groups, dilation,
            need_input, need_weight, dispatch.limits().window_buffer_elements,
        )
    else:
        cols = _gather(grad_output, weight.shape[2], x.shape[2], args, route)
        if route.kernel == DENSE:
            grad_input, grad_weight = column_grads_out_of_place(
                cols, x, weight, groups, need_input, need_weight
            )
        else:
            grad_input, grad_weight = column_grads(
                cols, x, weight, groups, route.layout, need_input, need_weight
            )
    grad_bias = grad_output.sum((0, 2)) if ctx.has_bias and need_bias else None
    return grad_input, grad_weight, grad_bias, None, None, None, None, None


def _jvp(ctx, x_tangent, weight_tangent, bias_tangent, *_):
    """Both Functions' forward-mode rule: the op is linear in ``x`` and in ``weight``."""
    x, weight = ctx.saved_tensors
    args = ctx.conv_args
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


def _save(ctx, x: Tensor, weight: Tensor, bias: Optional[Tensor], conv_args: ConvArgs) -> None:
    ctx.save_for_backward(x, weight)
    ctx.save_for_forward(x, weight)
    ctx.conv_args = conv_args
    ctx.has_bias = bias is not None


class _ConvTranspose1dFunction(torch.autograd.Function):
    """Forward scatter, backward gather, with explicit gradients, for ``torch.func`` transforms.

    ``setup_context`` keeps ``forward`` free of ``ctx`` (as the transforms require), ``jvp``
    is the forward-mode rule, and the vmap rule is generated (forward and backward take the
    out-of-place path under a transform).
    """

    generate_vmap_rule = True

    @staticmethod
    def forward(x, weight, bias, stride, padding, output_padding, groups, dilation):
        return conv_transpose1d_unchecked(
            x, weight, bias, stride, padding, output_padding, groups, dilation
        )

    @staticmethod
    def setup_context(ctx, inputs, output):
        x, weight, bias, *conv_args = inputs
        _save(ctx, x, weight, bias, tuple(conv_args))

    backward = staticmethod(_backward)
    jvp = staticmethod(_jvp)


class _EagerConvTranspose1dFunction(torch.autograd.Function):
    """The same op for plain eager autograd, with ``ctx`` in ``forward``.

    A Function with ``setup_context`` has its arguments bound through ``inspect.signature``
    on every call (tens of microseconds, as long as the whole op on a tiny input); this
    form skips that, so eager calls take it and only ``torch.func`` transforms need the other.
    """

    @staticmethod
    def forward(ctx, x, weight, bias, stride, padding, output_padding, groups, dilation):
        _save(ctx, x, weight, bias, (stride, padding, output_padding, groups, dilation))
        return conv_transpose1d_unchecked(
            x, weight, bias, stride, padding, output_padding, groups, dilation
        )

    backward = staticmethod(_backward)
    jvp = staticmethod(_jvp)


def run_checked(
    input: Tensor, weight: Tensor, bias: Optional[Tensor], stride: int, padding: int,
    output_padding: int, groups: int, dilation: int,
) -> Tensor:
    """The op on checked arguments, batched ``(B, C_in, T)`` or unbatched ``(C_in, T)``.

    Eager calls that autograd records go through an ``autograd.Function`` (our gather as the
    backward); captured graphs differentiate the captured ops themselves.
    """
    batched = input.dim() == 3
    x = input if batched else input.unsqueeze(0)
    args = (stride, padding, output_padding, groups, dilation)
    if not dispatch.records_grad(x, weight, bias):
        out = run_path(x, weight, bias, args, _route(x, weight, args, False))
    elif not dispatch.eager():
        out = conv_transpose1d_unchecked(x, weight, bias, *args)
    elif dispatch.transformed():
        out = _ConvTranspose1dFunction.apply(x, weight, bias, *args)
    else:
        out = _EagerConvTranspose1dFunction.apply(x, weight, bias, *args)
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
    and 0-d integer tensors count as integers. Captured graphs skip the checks (they would
    see symbolic sizes).
    """
    if dispatch.eager():
        stride, padding, output_padding, groups, dilation = check_conv_transpose_args(
            input, weight, bias, stride, padding, output_padding, groups, dilation
        )
    return run_checked(input, weight, bias, stride, padding, output_padding, groups, dilation)


__all__ = [
    "as_int", "check_conv_transpose_args", "check_input", "conv_transpose1d",
    "conv_transpose1d_unchecked", "run_checked", "run_path", "shortest_input",
]
