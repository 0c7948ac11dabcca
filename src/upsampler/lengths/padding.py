"""The transposed convolution's length formula and the paddings that make it exact.

A transposed convolution sends input sample ``t`` through kernel tap ``k`` to
output position ``t * stride + k * dilation - padding``::

    input     t=0       t=1       t=2
              |         |         |
    taps      k=0..K-1  k=0..K-1  k=0..K-1        (stride apart, dilation between taps)
    output    0 1 2 3 4 5 6 7 8 ...               (positions < 0 or >= L_out dropped)

so its output length is

    L_out = (L_in - 1) * stride - 2 * padding + dilation * (kernel_size - 1) + output_padding + 1.

Nothing here imports torch: these functions are plain integer maths shared by the
layers, the models, the recipes and the tests' error messages. Stack planning
(:mod:`upsampler.lengths.stacks`) and streaming context (:mod:`upsampler.lengths.context`)
stand on these functions.
"""

from __future__ import annotations


def check_int(name: str, value: object, minimum: int) -> int:
    """Return ``value`` if it is an int ``>= minimum``, else raise naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {value!r} ({type(value).__name__})")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return value


def effective_kernel_size(kernel_size: int, dilation: int = 1) -> int:
    """Span of a dilated kernel in samples: ``(kernel_size - 1) * dilation + 1``."""
    check_int("kernel_size", kernel_size, 1)
    check_int("dilation", dilation, 1)
    return (kernel_size - 1) * dilation + 1


def transposed_output_length(
    length: int,
    kernel_size: int,
    stride: int = 1,
    padding: int = 0,
    output_padding: int = 0,
    dilation: int = 1,
) -> int:
    """Output length of a 1-D transposed convolution (torch's formula).

    Raises ``ValueError`` when the arguments leave no output sample.
    """
    check_int("length", length, 1)
    check_int("stride", stride, 1)
    check_int("padding", padding, 0)
    check_int("output_padding", output_padding, 0)
    full = (length - 1) * stride + effective_kernel_size(kernel_size, dilation)
    out = full - 2 * padding + output_padding
    if out < 1:
        raise ValueError(
            f"padding={padding} removes every output sample: input length {length} gives "
            f"{full} samples before padding, and 2 * padding - output_padding = "
            f"{2 * padding - output_padding} of them are cut; use padding <= "
            f"{(full + output_padding - 1) // 2}"
        )
    return out


def same_padding(kernel_size: int, dilation: int = 1) -> int:
    """Padding that keeps a stride-1 convolution's length: ``(k * d - d) // 2`` (odd spans)."""
    return (effective_kernel_size(kernel_size, dilation) - 1) // 2


def output_size_range(
    length: int, kernel_size: int, stride: int = 1, padding: int = 0, dilation: int = 1
) -> tuple[int, int]:
    """Lengths a ``forward(input, output_size=...)`` call may ask for, inclusive.

    The shortest is the formula at ``output_padding=0``; each extra sample up to
    ``stride - 1`` is an implicit ``output_padding`` (torch's rule).
    """
    shortest = transposed_output_length(length, kernel_size, stride, padding, 0, dilation)
    return shortest, shortest + stride - 1


def exact_padding(kernel_size: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    """``(padding, output_padding)`` for which ``L_out == L_in * stride`` for every ``L_in``.

    From the length formula, ``L_out - L_in * stride = span - stride - 2p + op`` with
    ``span = dilation * (kernel_size - 1) + 1``, so we need ``2p - op = span - stride``::

        span - stride = excess   excess >= 0, even:  p = excess / 2,        op = 0
                                 excess >= 0, odd:   p = (excess + 1) / 2,  op = 1
                                 excess < 0:         p = 0,                 op = -excess

    ``output_padding`` must stay below ``max(stride, dilation)``; the odd case with
    ``stride == dilation == 1`` (an even kernel at stride 1) has no solution and
    raises ``ValueError`` pointing at :func:`exact_trim`.  HiFi-GAN's ``(k - u) // 2``
    is the even case, so official checkpoints keep their alignment.
    """
    check_int("stride", stride, 1)
    excess = effective_kernel_size(kernel_size, dilation) - stride
    if excess < 0:
        return 0, -excess
    padding, output_padding = (excess + 1) // 2, excess % 2
    if output_padding >= max(stride, dilation):
        raise ValueError(
            f"no (padding, output_padding) gives exactly length * stride for "
            f"kernel_size={kernel_size}, stride={stride}, dilation={dilation}: the kernel "
            f"overhangs by {excess} samples (odd), which needs output_padding=1, but "
            f"output_padding must be < max(stride, dilation) = {max(stride, dilation)}; "
            f"use padding=0 and trim with exact_trim(), or pick an odd kernel_size"
        )
    return padding, output_padding


def exact_trim(
    kernel_size: int, stride: int, dilation: int = 1, causal: bool = False
) -> tuple[int, int]:
    """``(left, right)`` samples to cut from a ``padding=0`` transposed conv's output.

    With no padding the output is ``L_in * stride + excess`` long, ``excess =
    span - stride``; cutting ``excess`` samples leaves exactly ``L_in * stride``.
    Symmetric trimming puts the odd sample on the left (``right = excess // 2``);
    ``causal=True`` cuts everything on the right.  Raises ``ValueError`` when the
    kernel is shorter than the stride (nothing to trim: use :func:`exact_padding`).
    """
    check_int("stride", stride, 1)
    excess = effective_kernel_size(kernel_size, dilation) - stride
    if excess < 0:
        raise ValueError(
            f"kernel span {excess + stride} is shorter than stride={stride}: the output "
            f"is {-excess} samples short per call, not long; use exact_padding() instead"
        )
    if causal:
        return 0, excess
    right = excess // 2
    return excess - right, right


def ceil_div(a: int, b: int) -> int:
    """``ceil(a / b)`` for integers."""
    return -(-a // b)


__all__ = [
    "ceil_div", "check_int", "effective_kernel_size", "exact_padding", "exact_trim",
    "output_size_range", "same_padding", "transposed_output_length",
]
