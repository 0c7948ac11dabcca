"""A from-scratch 1-D transposed convolution on plain torch tensors.

Forward: one matrix product turns every input sample into a column of
``C_out * kernel_size`` values (one per output channel and kernel tap); a scatter
then adds the column of input sample ``t`` and tap ``k`` into output position
``t * stride + k * dilation - padding``, dropping positions outside the output.
Backward is the matching gather (an unfold of the output gradient) followed by
two matrix products. No convolution op of torch is called on either path.

The overlap-add has four formulations, chosen per call by shape and context:

- strided block adds, one per run of taps (:mod:`upsampler.conv_transpose.kernels.blocks`), the default; a
  depthwise layer (one channel per group) multiplies and adds each run straight into the
  output instead of storing its columns (:mod:`upsampler.conv_transpose.kernels.depthwise`);
- one ``index_add_`` / ``index_select`` (:mod:`upsampler.conv_transpose.kernels.index`) for small calls,
  where per-op overhead dominates, or for tiny ones on the CPU a product with a cached 0/1
  scatter matrix (bias folded in by ``addmm``), redone by the indexed add when its result is
  not all finite (the product's zeros would spread one NaN or Inf over the whole item);
- per-phase input windows (:mod:`upsampler.conv_transpose.kernels.windows`) for kernels much longer than the
  stride, whose column buffer would be large;
- out-of-place pads and adds (:mod:`upsampler.conv_transpose.kernels.dense`) under ``torch.func``
  transforms, ``torch.compile`` and ``torch.export`` (hence ONNX).

Argument checks live in :mod:`upsampler.conv_transpose.checks`.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor

from upsampler.conv_transpose.capture import is_capturing, is_compiling, lowering_to_torch
from upsampler.conv_transpose.kernels.blocks import column_backward, columns, fold_batch, scatter
from upsampler.conv_transpose.kernels.depthwise import depthwise_forward
from upsampler.conv_transpose.kernels.index import matrix_forward, use_index_scatter
from upsampler.conv_transpose.checks import (
    as_int,
    check_conv_transpose_args,
    check_input,
    shortest_input,
)
from upsampler.conv_transpose.kernels.windows import use_windows, windows_backward, windows_forward
from upsampler.conv_transpose.kernels.dense import dense_column_backward, dense_conv_transpose1d, functorch_active


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
    the overlap-add is the out-of-place one of :mod:`upsampler.conv_transpose.kernels.dense`: a transform
    cannot write batched values into a buffer, the compiler fuses pads and adds better than
    strided in-place writes, and an exported graph of pads and adds has no index scatter.
    """
    if not torch.jit.is_scripting():
        if lowering_to_torch():  # the opt-in export to ONNX's ConvTranspose node
            return torch.conv_transpose1d(
                x, weight, bias, stride, padding, output_padding, groups, dilation
            )
        # compiling first: dynamo never traces the functorch query
        if is_compiling() or functorch_active():
            return dense_conv_transpose1d(
                x, weight, bias, stride, padding, output_padding, groups, dilation
            )
    batch, _, length = x.shape
    kernel_size = weight.shape[2]
    if not torch.jit.is_scripting():
        if batch == 1 and groups == 1 and not is_capturing():
            out = matrix_forward(x, weight, bias, stride, padding, output_padding, dilation)
            if out is not None:
                return out
        columns_total = batch * weight.shape[1] * groups * kernel_size * length
        if not is_capturing() and use_windows(kernel_size, stride, dilation, columns_total):
            return windows_forward(x, weight, bias, stride, padding, output_padding, groups, dilation)
    # graph capture keeps one layout for every length (no guard on the symbolic length)
    fold = False
    if not torch.jit.is_scripting():
        if not is_capturing():
            depthwise = weight.shape[1] == 1 and x.shape[1] == groups
            if depthwise and not use_index_scatter(batch, groups, kernel_size, length):
                return depthwise_forward(x, weight, bias, stride, padding, output_padding, dilation)
            fold = fold_batch(batch, length, weight.shape[1] * groups * kernel_size)
            fold = fold and not use_index_scatter(batch, weight.shape[1] * groups, kernel_size, length)
    cols = columns(x, weight, groups, fold)
    return scatter(cols, bias, stride, padding, output_padding, dilation)


def _backward(ctx, grad_output: Tensor):
    """Both Functions' backward: the gather, then the matrix products of the chosen formulation."""
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


def _save(ctx, x: Tensor, weight: Tensor, bias: Optional[Tensor], conv_args: tuple) -> None:
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
    function = _EagerConvTranspose1dFunction
    if functorch_active():
        function = _ConvTranspose1dFunction
    return function.apply(x, weight, bias, stride, padding, output_padding, groups, dilation)


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
