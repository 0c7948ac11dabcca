"""A from-scratch 1-D transposed convolution on plain torch tensors.

Forward: one matrix product turns every input sample into a column of
``kernel_size * C_out`` values (one per output channel and kernel tap); a scatter
then adds the column of input sample ``t`` and tap ``k`` into output position
``t * stride + k * dilation - padding``, dropping positions outside the output.
Backward is the matching gather (an unfold of the output gradient) followed by
two matrix products. No convolution op of torch is called on either path.

Internally the columns and the scatter buffer are channels-last, ``(B, T, K, C)``
and ``(B, L, C)``: each tap's scatter is then an add of contiguous channel rows
with a row stride of ``stride``, and the whole output is transposed once at the end.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor

from upsampler.lengths import ceil_div, check_int, transposed_output_length


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


def _columns(x: Tensor, weight: Tensor, groups: int) -> Tensor:
    """Matrix product into columns: ``(B, C_in, T) -> (B, T, K, C_out)``."""
    batch, in_channels, length = x.shape
    _, group_out, kernel_size = weight.shape
    group_in = in_channels // groups
    if groups == 1:
        taps = weight.permute(0, 2, 1).reshape(in_channels, kernel_size * group_out)
        # (B, C_in, T) -> (B, T, C_in) @ (C_in, K * C_out) -> (B, T, K * C_out)
        cols = torch.matmul(x.transpose(1, 2), taps)
        return cols.view(batch, length, kernel_size, group_out)
    if group_in == 1 and group_out == 1:
        # depthwise: (B, T, 1, C) * (K, C) -> (B, T, K, C), an elementwise product
        return x.transpose(1, 2).unsqueeze(2) * weight[:, 0, :].t()
    # (B, C_in, T) -> (G, B * T, C_in / G)
    xg = x.reshape(batch, groups, group_in, length).permute(1, 0, 3, 2)
    xg = xg.reshape(groups, batch * length, group_in)
    # (C_in, C_out / G, K) -> (G, C_in / G, K * C_out / G)
    wg = weight.reshape(groups, group_in, group_out, kernel_size).permute(0, 1, 3, 2)
    cols = torch.bmm(xg, wg.reshape(groups, group_in, kernel_size * group_out))
    # (G, B, T, K, C_out / G) -> (B, T, K, C_out)
    cols = cols.view(groups, batch, length, kernel_size, group_out).permute(1, 2, 3, 0, 4)
    return cols.reshape(batch, length, kernel_size, groups * group_out)


def _buffer_frames(length: int, kernel_size: int, stride: int, dilation: int, end: int) -> int:
    """Frames of ``stride`` samples that hold every scattered position and the output."""
    full = (length - 1) * stride + (kernel_size - 1) * dilation + 1
    return ceil_div(max(full, end), stride)


def _scatter(
    cols: Tensor,
    bias: Optional[Tensor],
    stride: int,
    padding: int,
    dilation: int,
    out_length: int,
) -> Tensor:
    """Add each column into ``t * stride + k * dilation - padding``: ``(B, T, K, C) -> (B, C, L)``."""
    batch, length, kernel_size, channels = cols.shape
    frames = _buffer_frames(length, kernel_size, stride, dilation, padding + out_length)
    if bias is None:
        buffer = cols.new_zeros((batch, frames * stride, channels))
    else:
        buffer = bias.expand(batch, frames * stride, channels).contiguous()
    # (B, F * stride, C) -> (B, F, stride, C): frame f, phase r is position f * stride + r
    phases = buffer.view(batch, frames, stride, channels)
    for k in range(kernel_size):
        frame, phase = divmod(k * dilation, stride)
        phases[:, frame : frame + length, phase].add_(cols[:, :, k])
    # crop the padding, (B, L, C) -> (B, C, L)
    return buffer[:, padding : padding + out_length].transpose(1, 2).contiguous()


def _gather(
    grad_output: Tensor, length: int, kernel_size: int, stride: int, padding: int, dilation: int
) -> Tensor:
    """The scatter's adjoint, an unfold: ``(B, C, L) -> (B, T, K, C)`` columns."""
    batch, channels, out_length = grad_output.shape
    frames = _buffer_frames(length, kernel_size, stride, dilation, padding + out_length)
    buffer = grad_output.new_zeros((batch, frames * stride, channels))
    # (B, C, L) -> (B, L, C), placed after the cropped padding
    buffer[:, padding : padding + out_length] = grad_output.transpose(1, 2)
    sizes = (batch, length, kernel_size, channels)
    strides = (frames * stride * channels, stride * channels, dilation * channels, 1)
    return buffer.as_strided(sizes, strides)


def _backward(
    grad_output: Tensor,
    x: Tensor,
    weight: Tensor,
    stride: int,
    padding: int,
    groups: int,
    dilation: int,
    need_input: bool,
    need_weight: bool,
) -> tuple[Optional[Tensor], Optional[Tensor]]:
    batch, in_channels, length = x.shape
    _, group_out, kernel_size = weight.shape
    group_in = in_channels // groups
    cols = _gather(grad_output, length, kernel_size, stride, padding, dilation)
    grad_input: Optional[Tensor] = None
    grad_weight: Optional[Tensor] = None
    if groups == 1:
        cols = cols.reshape(batch * length, kernel_size * group_out)  # materialise the unfold
        taps = weight.permute(0, 2, 1).reshape(in_channels, kernel_size * group_out)
        if need_input:
            # (B * T, K * C_out) @ (K * C_out, C_in) -> (B, T, C_in) -> (B, C_in, T)
            grad_input = (cols @ taps.t()).view(batch, length, in_channels).transpose(1, 2)
        if need_weight:
            # (C_in, B * T) @ (B * T, K * C_out) -> (C_in, K, C_out) -> (C_in, C_out, K)
            flat_x = x.transpose(0, 1).reshape(in_channels, batch * length)
            grad_weight = (flat_x @ cols).view(in_channels, kernel_size, group_out)
            grad_weight = grad_weight.permute(0, 2, 1)
    else:
        # (B, T, K, C_out) -> (G, B * T, K * C_out / G)
        cols = cols.reshape(batch, length, kernel_size, groups, group_out).permute(3, 0, 1, 2, 4)
        cols = cols.reshape(groups, batch * length, kernel_size * group_out)
        wg = weight.reshape(groups, group_in, group_out, kernel_size).permute(0, 1, 3, 2)
        wg = wg.reshape(groups, group_in, kernel_size * group_out)
        if need_input:
            # (G, B * T, K * C_out / G) @ (G, K * C_out / G, C_in / G) -> (B, C_in, T)
            grad_input = torch.bmm(cols, wg.transpose(1, 2))
            grad_input = grad_input.view(groups, batch, length, group_in).permute(1, 0, 3, 2)
            grad_input = grad_input.reshape(batch, in_channels, length)
        if need_weight:
            # (B, C_in, T) -> (G, C_in / G, B * T) @ (G, B * T, K * C_out / G)
            xg = x.reshape(batch, groups, group_in, length).permute(1, 2, 0, 3)
            xg = xg.reshape(groups, group_in, batch * length)
            grad_weight = torch.bmm(xg, cols).view(groups, group_in, kernel_size, group_out)
            grad_weight = grad_weight.permute(0, 1, 3, 2).reshape(in_channels, group_out, kernel_size)
    if grad_input is not None:
        grad_input = grad_input.contiguous()
    if grad_weight is not None:
        grad_weight = grad_weight.contiguous()
    return grad_input, grad_weight


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
    length = x.shape[-1]
    kernel_size = weight.shape[-1]
    out_length = (
        (length - 1) * stride - 2 * padding + dilation * (kernel_size - 1) + output_padding + 1
    )
    cols = _columns(x, weight, groups)
    return _scatter(cols, bias, stride, padding, dilation, out_length)


class _ConvTranspose1dFunction(torch.autograd.Function):
    """Forward scatter, backward gather, with explicit gradients."""

    @staticmethod
    def forward(ctx, x, weight, bias, stride, padding, output_padding, groups, dilation):
        ctx.save_for_backward(x, weight)
        ctx.conv_args = (stride, padding, groups, dilation)
        ctx.has_bias = bias is not None
        return conv_transpose1d_unchecked(
            x, weight, bias, stride, padding, output_padding, groups, dilation
        )

    @staticmethod
    def backward(ctx, grad_output):
        x, weight = ctx.saved_tensors
        stride, padding, groups, dilation = ctx.conv_args
        need_input, need_weight, need_bias = ctx.needs_input_grad[:3]
        grad_input, grad_weight = _backward(
            grad_output, x, weight, stride, padding, groups, dilation, need_input, need_weight
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
    if not torch.jit.is_scripting() and not torch.jit.is_tracing():
        check_conv_transpose_args(
            input, weight, bias, stride, padding, output_padding, groups, dilation
        )
    batched = input.dim() == 3
    x = input if batched else input.unsqueeze(0)
    if torch.jit.is_scripting() or torch.jit.is_tracing():
        out = conv_transpose1d_unchecked(
            x, weight, bias, stride, padding, output_padding, groups, dilation
        )
    else:
        out = _apply_function(x, weight, bias, stride, padding, output_padding, groups, dilation)
    return out if batched else out.squeeze(0)


__all__ = ["conv_transpose1d", "conv_transpose1d_unchecked", "check_conv_transpose_args"]
