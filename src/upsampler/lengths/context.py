"""Streaming context: which input samples each output sample of a layer stack reads.

A layer is described by ``(stride, left, right)``: output sample ``j`` (at ``stride`` times
the input rate) reads input sample ``t`` only if ``t * stride`` lies in ``[j - left, j + right]``.
Plain integer maths on top of :mod:`upsampler.lengths.padding`.
"""

from __future__ import annotations

from upsampler.lengths.padding import (
    ceil_div,
    check_int,
    effective_kernel_size,
    transposed_output_length,
)


def conv_context(kernel_size: int, dilation: int = 1, padding: int = 0) -> tuple[int, int]:
    """``(left, right)`` input samples around ``j`` that output ``j`` of a stride-1 conv reads.

    Output ``j`` reads inputs ``j - padding .. j - padding + span - 1``, ``span`` the
    dilated kernel's span, so ``left = padding`` and ``right = span - 1 - padding``.
    """
    check_int("padding", padding, 0)
    return padding, effective_kernel_size(kernel_size, dilation) - 1 - padding


def transposed_context(
    kernel_size: int, stride: int, padding: int = 0, dilation: int = 1
) -> tuple[int, int]:
    """``(left, right)`` of a transposed conv, in output samples.

    Input ``t`` lands on cropped output ``t * stride + k * dilation - padding``, so output
    ``j`` reads inputs with ``t * stride`` in ``[j + padding - (span - 1), j + padding]``::

        t * stride:   j+p-(span-1) ........ j+p
        left  = span - 1 - padding          right = padding
    """
    check_int("stride", stride, 1)
    check_int("padding", padding, 0)
    return effective_kernel_size(kernel_size, dilation) - 1 - padding, padding


def chain_context(layers: list[tuple[int, int, int]]) -> tuple[int, int]:
    """``(left, right)`` in final output samples of layers ``(stride, left, right)`` in sequence.

    Each layer maps the reach before it through ``reach' = stride * reach + own``, so output
    ``j`` of the chain reads input ``t`` only if ``t * prod(strides)`` is in ``[j - left,
    j + right]``. The floor identities make this exact when each layer's bound is exact.
    """
    left = right = 0
    for stride, layer_left, layer_right in layers:
        check_int("stride", stride, 1)
        left, right = stride * left + layer_left, stride * right + layer_right
    return left, right


def streaming_ready_length(
    received: int,
    kernel_size: int,
    stride: int = 1,
    padding: int = 0,
    output_padding: int = 0,
    dilation: int = 1,
) -> int:
    """Output samples of a transposed conv that are final after ``received`` input samples.

    Positions before ``received * stride`` (uncropped) get nothing from later inputs, and
    none may lie beyond the output length should the stream end now, so the answer is
    ``max(0, min(received * stride - padding, L_out(received)))``.
    """
    check_int("received", received, 0)
    if received == 0:
        return 0
    end = transposed_output_length(received, kernel_size, stride, padding, output_padding, dilation)
    return max(0, min(received * stride - padding, end))


def look_ahead_frames(right_context: int, hop_length: int) -> int:
    """Frames after frame ``f`` needed before all of frame ``f``'s ``hop_length`` samples are final.

    Sample ``j`` is final once ``frames * hop_length - right_context > j``; for the last sample
    of frame ``f`` that is ``frames >= f + 1 + ceil(right_context / hop_length)``.
    """
    check_int("hop_length", hop_length, 1)
    return ceil_div(max(right_context, 0), hop_length)


__all__ = [
    "chain_context", "conv_context", "look_ahead_frames", "streaming_ready_length",
    "transposed_context",
]
