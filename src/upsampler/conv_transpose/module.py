"""``ConvTranspose1d``: a drop-in for ``torch.nn.ConvTranspose1d`` on the from-scratch op.

``torch.jit.script`` is not supported (torch 2.13 deprecates ``torch.jit``): tracing,
``torch.compile``, ``torch.export`` and the ONNX export capture the layer instead.
"""

from __future__ import annotations

import math
from typing import List, Optional, Union

import torch
from torch import Tensor, nn

from upsampler.conv_transpose import dispatch
from upsampler.conv_transpose.checks import as_int, check_input
from upsampler.conv_transpose.functional import run_checked
from upsampler.lengths import exact_trim, output_size_range

IntOr1Tuple = Union[int, tuple[int]]
KAIMING_SLOPE = math.sqrt(5)  # torch's default init for convolution weights


def _single(name: str, value: IntOr1Tuple, minimum: int) -> int:
    """Accept ``n`` or ``(n,)`` as torch does (``n`` an int, numpy int or integer tensor)."""
    if isinstance(value, (tuple, list)) or (isinstance(value, Tensor) and value.dim() == 1):
        if len(value) != 1:
            raise ValueError(f"{name} must be an int or a 1-tuple, got {value!r}")
        (value,) = value
    try:
        return as_int(name, value, minimum)
    except TypeError as error:
        raise TypeError(f"{name} must be an int or a 1-tuple of int, got {value!r}") from error


class ConvTranspose1d(nn.Module):
    """1-D transposed convolution with ``torch.nn.ConvTranspose1d``'s interface and numbers.

    Same constructor, parameter names and shapes (``weight`` is
    ``(in_channels, out_channels // groups, kernel_size)``), default initialisation,
    ``forward(input, output_size=None)`` and ``extra_repr``, so ``load_state_dict``
    works both ways with torch's module. Bad arguments that torch only rejects in
    ``forward`` (``output_padding`` too large, channels not divisible by ``groups``, zero
    channels) are rejected here at construction; a padding that leaves short inputs no
    output sample is allowed, and such an input is rejected in ``forward`` as torch does.
    """

    __constants__ = [
        "in_channels", "out_channels", "kernel_size", "stride", "padding",
        "output_padding", "groups", "dilation", "padding_mode",
    ]

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: IntOr1Tuple,
        stride: IntOr1Tuple = 1,
        padding: IntOr1Tuple = 0,
        output_padding: IntOr1Tuple = 0,
        groups: int = 1,
        bias: bool = True,
        dilation: IntOr1Tuple = 1,
        padding_mode: str = "zeros",
        device: Optional[Union[torch.device, str]] = None,
        dtype: Optional[torch.dtype] = None,
    ) -> None:
        super().__init__()
        if padding_mode != "zeros":
            raise ValueError(
                f'Only "zeros" padding mode is supported for ConvTranspose1d, '
                f"got padding_mode={padding_mode!r}"
            )
        # zero channels: torch builds an empty module that fails unreadably in forward
        in_channels = _single("in_channels", in_channels, 1)
        out_channels = _single("out_channels", out_channels, 1)
        groups = _single("groups", groups, 1)
        kernel_size = _single("kernel_size", kernel_size, 1)
        stride = _single("stride", stride, 1)
        padding = _single("padding", padding, 0)
        output_padding = _single("output_padding", output_padding, 0)
        dilation = _single("dilation", dilation, 1)
        for name, channels in (("in_channels", in_channels), ("out_channels", out_channels)):
            if channels % groups != 0:
                raise ValueError(f"{name}={channels} must be divisible by groups={groups}")
        if output_padding >= max(stride, dilation):
            raise ValueError(
                f"output padding must be smaller than either stride or dilation, got "
                f"output_padding={output_padding} with stride={stride}, dilation={dilation}"
            )
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = (kernel_size,)
        self.stride = (stride,)
        self.padding = (padding,)
        self.output_padding = (output_padding,)
        self.dilation = (dilation,)
        self.groups = groups
        self.padding_mode = padding_mode
        self.transposed = True
        factory = {"device": device, "dtype": dtype}
        self.weight = nn.Parameter(
            torch.empty((in_channels, out_channels // groups, kernel_size), **factory)
        )
        if bias:
            self.bias = nn.Parameter(torch.empty(out_channels, **factory))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """torch's default: Kaiming-uniform weight, bias uniform in +-1/sqrt(fan_in)."""
        nn.init.kaiming_uniform_(self.weight, a=KAIMING_SLOPE)
        if self.bias is not None:
            fan_in = self.weight.shape[1] * self.weight.shape[2]
            bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0.0
            nn.init.uniform_(self.bias, -bound, bound)

    def _output_padding(self, input: Tensor, output_size: Optional[List[int]]) -> int:
        if output_size is None:
            return self.output_padding[0]
        if len(output_size) not in (1, input.dim()):
            raise ValueError(
                f"output_size must have 1 or {input.dim()} elements (got {len(output_size)})"
            )
        requested = output_size[-1]
        shortest, longest = output_size_range(
            input.shape[-1], self.kernel_size[0], self.stride[0], self.padding[0], self.dilation[0]
        )
        if requested < shortest or requested > longest:
            raise ValueError(
                f"requested an output size of {requested}, but valid sizes range from "
                f"{shortest} to {longest} (for an input of {input.shape[-1]} samples)"
            )
        return requested - shortest

    def forward(self, input: Tensor, output_size: Optional[List[int]] = None) -> Tensor:
        """``(B, C_in, T) -> (B, C_out, L_out)`` or ``(C_in, T) -> (C_out, L_out)``.

        ``L_out = (T - 1) * stride - 2 * padding + dilation * (kernel_size - 1)
        + output_padding + 1``; with padding from ``lengths.exact_padding`` that is
        ``T * stride``. ``output_size`` picks ``L_out`` within ``stride - 1`` of the shortest.
        """
        output_padding = self._output_padding(input, output_size)
        stride, padding, dilation = self.stride[0], self.padding[0], self.dilation[0]
        # the constructor checked every argument: only the input is checked per call
        if dispatch.eager():
            check_input(input, self.weight, self.bias, stride, padding, output_padding, dilation)
        return run_checked(
            input, self.weight, self.bias, stride, padding, output_padding, self.groups, dilation
        )

    def __prepare_scriptable__(self) -> nn.Module:
        """``torch.jit.script`` calls this first: refuse with the alternatives."""
        raise TypeError(
            f"{type(self).__name__} cannot be compiled by torch.jit.script (deprecated in "
            f"torch 2.13); use torch.jit.trace, torch.export.export, torch.compile or "
            f"upsampler.export.export_onnx"
        )

    def extra_repr(self) -> str:
        s = (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"stride={self.stride}"
        )
        if self.padding != (0,):
            s += f", padding={self.padding}"
        if self.dilation != (1,):
            s += f", dilation={self.dilation}"
        if self.output_padding != (0,):
            s += f", output_padding={self.output_padding}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        return s


class TrimmedConvTranspose1d(ConvTranspose1d):
    """``padding=0`` transposed conv whose overhang is cut explicitly by ``lengths.exact_trim``.

    For the kernels where no ``(padding, output_padding)`` pair gives ``T * stride`` (an even
    kernel at stride 1); same parameters and state_dict keys as ``ConvTranspose1d``::

        full output  [ left | T * stride samples | right ]    left + right = k - stride
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int, kernel_size: int) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride)
        self.trim = exact_trim(kernel_size, stride)

    def forward(self, input: Tensor, output_size: Optional[List[int]] = None) -> Tensor:
        """``(B, C_in, T) -> (B, C_out, T * stride)``."""
        full = super().forward(input, output_size)
        left, right = self.trim
        return full[..., left : full.shape[-1] - right]
