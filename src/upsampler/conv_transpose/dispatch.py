"""The one place that chooses how a transposed convolution is computed.

Every call runs two stages: a matrix product into columns ``(B, C_out, K, T)`` and an
overlap-add that puts column ``(k, t)`` at output position ``t * stride + k * dilation -
padding`` (backward: the adjoint gather, then the products). :func:`forward_path` and
:func:`backward_path` name the kernel of :mod:`upsampler.conv_transpose.kernels` for that
second stage and the layout of the products, from the shape, the device and the execution
context; the thresholds they compare against live in one :class:`Limits` table, each with the
section of ``recipes/benchmark.py`` that measures it. :func:`force` pins a path (or changes a
limit) for tests and the benchmark::

    with dispatch.force(forward="index", backward="index"):
        out = conv_transpose1d(x, weight, bias, stride=2)

Forward paths: ``torch`` (torch's own op, for the ONNX export that lowers to
``ConvTranspose``), ``dense`` (out-of-place pads and adds: ``torch.func`` transforms,
``torch.compile``, ``torch.export``), ``matrix`` (a product with a cached 0/1 scatter matrix,
redone by ``index`` when its result is not all finite), ``index`` (one ``index_add_``),
``blocks`` (strided in-place block adds, one per run of taps), ``depthwise`` (the block adds
multiplied straight into the output, one channel per group) and ``windows`` (per-phase input
windows for kernels many strides long). Backward paths: the same names less ``torch`` and
``depthwise``.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, fields, replace
from functools import lru_cache
from typing import Iterator, NamedTuple, Optional

import torch
from torch import Tensor

from upsampler.conv_transpose.capture import is_compiling
from upsampler.conv_transpose.kernels.columns import BATCHED, ELEMENTWISE, FOLD, MM
from upsampler.conv_transpose.plan import PLAN_CACHE_SIZE, output_length

TORCH, DENSE, MATRIX, INDEX, BLOCKS, DEPTHWISE, WINDOWS = (
    "torch", "dense", "matrix", "index", "blocks", "depthwise", "windows"
)
FORWARD_PATHS = (TORCH, DENSE, MATRIX, INDEX, BLOCKS, DEPTHWISE, WINDOWS)
BACKWARD_PATHS = (DENSE, MATRIX, INDEX, BLOCKS, WINDOWS)


@dataclass(frozen=True, eq=False)  # hashed by identity: a cheap key for the choice's cache
class Limits:
    """Every threshold of the choice, with the ``recipes/benchmark.py`` section that sets it.

    All measured on 2 CPU threads; ``docs/benchmarks.md`` holds the tables.
    """

    # index / matrix: calls with at most this many column values (B * C_out * K * T) take one
    # ``index_add_`` (section "crossover", pair "index/blocks")
    index_max_columns: int = 16384
    # matrix: among those, CPU calls whose 0/1 scatter product costs at most this many
    # multiply-adds (columns * L_out) take the product (sections "overhead" and "crossover",
    # pair "matrix/index"); its cost grows with T**2, so only tiny calls take it
    matrix_max_products: int = 2**18
    # fold: one (C_in, B * T) product instead of B products of (C_in, T) when a sample has
    # fewer steps than this many times its columns per step (section "layers", batch 16)
    fold_ratio: int = 4
    # windows: kernels spanning at least this many strides (K * dilation / stride) whose
    # column buffer would hold at least windows_min_columns values (section "crossover",
    # pair "windows/blocks"; 2**24 values are 64 MiB of float32)
    windows_min_span_ratio: int = 32
    windows_min_columns: int = 2**24
    # windows: elements of one chunk's window buffer (section "long_kernel": peak memory
    # against time)
    window_buffer_elements: int = 2**21


LIMITS = Limits()


class Route(NamedTuple):
    """A chosen path: the overlap-add kernel, the layout of the matrix products, and whether
    a graph capture (trace, compile, export) records it."""

    kernel: str
    layout: str
    captured: bool = False


@dataclass(frozen=True)
class _Forced:
    forward: Optional[str]
    backward: Optional[str]
    limits: Limits


_FORCED = [_Forced(None, None, LIMITS)]  # the innermost ``force``; read by every call


def limits() -> Limits:
    """The limits in force (``LIMITS`` unless a :func:`force` changed one)."""
    return _FORCED[0].limits


@contextlib.contextmanager
def force(
    forward: Optional[str] = None, backward: Optional[str] = None, **limit_values: int
) -> Iterator[None]:
    """Pin the forward and/or backward path, or change :class:`Limits` entries, while active.

    For tests and the benchmark; not thread-safe (one setting for the process). A forced path
    applies to every call, eager or captured, including ``depthwise`` only on depthwise
    layers (one input and one output channel per group; others raise ``ValueError``).
    """
    if forward is not None and forward not in FORWARD_PATHS:
        raise ValueError(f"forward must be one of {FORWARD_PATHS} or None, got {forward!r}")
    if backward is not None and backward not in BACKWARD_PATHS:
        raise ValueError(f"backward must be one of {BACKWARD_PATHS} or None, got {backward!r}")
    names = {f.name for f in fields(Limits)}
    for name, value in limit_values.items():
        if name not in names:
            raise ValueError(f"{name!r} is not a Limits entry; allowed: {sorted(names)}")
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ValueError(f"{name} must be an int >= 0, got {value!r}")
    saved = _FORCED[0]
    _FORCED[0] = _Forced(
        forward if forward is not None else saved.forward,
        backward if backward is not None else saved.backward,
        replace(saved.limits, **limit_values) if limit_values else saved.limits,
    )
    try:
        yield
    finally:
        _FORCED[0] = saved


def torch_conv_transpose() -> contextlib.AbstractContextManager[None]:
    """While active, the op calls torch's own ``conv_transpose1d`` (forward path ``torch``).

    For the opt-in ONNX export that lowers our layer to ONNX's ``ConvTranspose`` node.
    """
    return force(forward=TORCH)


def transformed() -> bool:
    """Whether a ``torch.func`` transform (vmap, grad, jvp, ...) wraps the current call."""
    return bool(torch._C._are_functorch_transforms_active())


def eager() -> bool:
    """Whether the call runs eagerly: no tracing, compiling or exporting."""
    return not (torch.jit.is_tracing() or is_compiling())


def records_grad(x: Tensor, weight: Tensor, bias: Optional[Tensor]) -> bool:
    """Whether autograd records this call (else the Function's bookkeeping is skipped)."""
    if not torch.is_grad_enabled():
        return False
    return x.requires_grad or weight.requires_grad or (bias is not None and bias.requires_grad)


def _layout(kernel: str, batch: int, length: int, group_in: int, group_out: int, groups: int,
            kernel_size: int, capturing: bool, lim: Limits, forward: bool) -> str:
    """How the matrix products are laid out for ``kernel``."""
    if forward and group_in == 1 and group_out == 1:
        return ELEMENTWISE
    if batch == 1 and groups == 1 and not capturing:  # a trace would fix the batch at 1
        return MM
    folds = batch > 1 and length * lim.fold_ratio < groups * group_out * kernel_size
    if kernel == BLOCKS and folds and not capturing:
        return FOLD
    return BATCHED


def _by_size(batch: int, in_channels: int, length: int, group_out: int, kernel_size: int,
             stride: int, padding: int, output_padding: int, groups: int, dilation: int,
             device_type: str, lim: Limits, forward: bool) -> Route:
    """The eager choice from the shape alone (cached: tiny calls pay one lookup)."""
    columns = batch * groups * group_out * kernel_size * length
    long = kernel_size * dilation >= lim.windows_min_span_ratio * stride
    if long and columns >= lim.windows_min_columns:
        kernel = WINDOWS
    elif columns <= lim.index_max_columns:
        out_length = output_length(length, kernel_size, stride, padding, output_padding, dilation)
        small = columns * out_length <= lim.matrix_max_products
        kernel = MATRIX if small and device_type == "cpu" else INDEX
    elif forward and in_channels == groups and group_out == 1:
        kernel = DEPTHWISE
    else:
        kernel = BLOCKS
    group_in = in_channels // groups
    return Route(kernel, _layout(kernel, batch, length, group_in, group_out, groups,
                                 kernel_size, False, lim, forward))


_cached_by_size = lru_cache(maxsize=PLAN_CACHE_SIZE)(_by_size)


def _path(batch: int, in_channels: int, length: int, group_out: int, kernel_size: int,
          stride: int, padding: int, output_padding: int, groups: int, dilation: int,
          device_type: str, forward: bool) -> Route:
    state = _FORCED[0]
    lim = state.limits
    forced = state.forward if forward else state.backward
    group_in = in_channels // groups
    if forced is None:
        if forward and is_compiling():  # first: dynamo never traces the functorch query
            forced, capturing = DENSE, True
        elif transformed():
            forced, capturing = DENSE, False
        elif forward and torch.jit.is_tracing():
            forced, capturing = BLOCKS, True  # a trace keeps one layout for every length
        else:
            return _cached_by_size(batch, in_channels, length, group_out, kernel_size, stride,
                                   padding, output_padding, groups, dilation, device_type, lim,
                                   forward)
    else:
        capturing = forward and not eager()
        if forced == DEPTHWISE and (group_in, group_out) != (1, 1):
            raise ValueError(
                f"forced forward path 'depthwise' needs one input and one output channel per "
                f"group, got {group_in} and {group_out}"
            )
    layout = _layout(forced, batch, length, group_in, group_out, groups, kernel_size,
                     capturing, lim, forward)
    return Route(forced, layout, capturing)


def forward_path(
    batch: int, in_channels: int, length: int, group_out: int, kernel_size: int, stride: int,
    padding: int, output_padding: int, groups: int, dilation: int, device_type: str,
) -> Route:
    """The forward path of a ``(B, C_in, T)`` call with a ``(C_in, C_out / G, K)`` weight."""
    return _path(batch, in_channels, length, group_out, kernel_size, stride, padding,
                 output_padding, groups, dilation, device_type, True)


def backward_path(
    batch: int, in_channels: int, length: int, group_out: int, kernel_size: int, stride: int,
    padding: int, output_padding: int, groups: int, dilation: int, device_type: str,
) -> Route:
    """The backward path (gather, then products) of the same call."""
    return _path(batch, in_channels, length, group_out, kernel_size, stride, padding,
                 output_padding, groups, dilation, device_type, False)


__all__ = [
    "BACKWARD_PATHS", "FORWARD_PATHS", "LIMITS", "Limits", "Route", "backward_path",
    "eager", "force", "forward_path", "limits", "records_grad",
    "torch_conv_transpose", "transformed",
]
