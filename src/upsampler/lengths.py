"""Pure integer length arithmetic: the single source of truth for every length.

A transposed convolution sends input sample ``t`` through kernel tap ``k`` to
output position ``t * stride + k * dilation - padding``::

    input     t=0       t=1       t=2
              |         |         |
    taps      k=0..K-1  k=0..K-1  k=0..K-1        (stride apart, dilation between taps)
    output    0 1 2 3 4 5 6 7 8 ...               (positions < 0 or >= L_out dropped)

so its output length is

    L_out = (L_in - 1) * stride - 2 * padding + dilation * (kernel_size - 1) + output_padding + 1.

Nothing here imports torch: these functions are plain integer maths shared by the
layers, the models, the recipes and the tests' error messages.
"""

from __future__ import annotations

from collections.abc import Sequence


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


def _prime_factors(n: int) -> list[int]:
    factors, p = [], 2
    while p * p <= n:
        while n % p == 0:
            factors.append(p)
            n //= p
        p += 1
    if n > 1:
        factors.append(n)
    return factors


def _factorisations(n: int, largest: int, smallest: int) -> list[list[int]]:
    """Every non-increasing list of factors in ``[smallest, largest]`` whose product is n."""
    if n == 1:
        return [[]]
    found = []
    for first in range(min(n, largest), smallest - 1, -1):
        if n % first == 0:
            found += [[first] + rest for rest in _factorisations(n // first, first, smallest)]
    return found


HIFIGAN_NUM_UPSAMPLES = 4  # HiFi-GAN V1/V2 upsample in four stages


def plan_upsample_rates(hop_length: int, max_rate: int = 8) -> list[int]:
    """Per-layer strides, largest first, whose product is exactly ``hop_length``.

    Each rate is at most ``max_rate`` and at least 2. The plan aims at HiFi-GAN's
    four stages (more when the hop needs them, fewer when it has fewer prime
    factors); among plans of that depth it prefers rates that are powers of a
    single prime (clean polyphase structure), then the largest rates first:
    256 -> [8, 8, 2, 2], 200 -> [5, 5, 4, 2], 300 -> [5, 5, 4, 3].
    A prime factor above ``max_rate`` raises ``ValueError``.
    """
    check_int("hop_length", hop_length, 1)
    check_int("max_rate", max_rate, 2)
    if hop_length == 1:
        return []
    primes = _prime_factors(hop_length)
    too_big = [p for p in primes if p > max_rate]
    if too_big:
        raise ValueError(
            f"hop_length={hop_length} has the prime factor {too_big[-1]} > max_rate={max_rate}; "
            f"raise max_rate to at least {too_big[-1]} or choose a hop whose prime factors "
            f"are all <= {max_rate}"
        )
    plans = _factorisations(hop_length, max_rate, 2)
    fewest = min(len(plan) for plan in plans)
    depth = min(max(fewest, HIFIGAN_NUM_UPSAMPLES), len(primes))

    def single_prime(plan: list[int]) -> bool:
        return all(len(set(_prime_factors(rate))) == 1 for rate in plan)

    candidates = [plan for plan in plans if len(plan) == depth]
    clean = [plan for plan in candidates if single_prime(plan)]
    return max(clean or candidates)


def receptive_field(kernel_sizes: list[int], dilations: list[int]) -> int:
    """Receptive field in samples of a stack of stride-1 convolutions."""
    if len(kernel_sizes) != len(dilations):
        raise ValueError(
            f"kernel_sizes and dilations must have the same length, got "
            f"{len(kernel_sizes)} and {len(dilations)}"
        )
    return 1 + sum(effective_kernel_size(k, d) - 1 for k, d in zip(kernel_sizes, dilations))


def ceil_div(a: int, b: int) -> int:
    """``ceil(a / b)`` for integers."""
    return -(-a // b)


def resize_conv_kernel_size(kernel_size: int) -> int:
    """Kernel of the stride-1 conv in a resize-convolution that replaces a transposed conv.

    The transposed conv's ``kernel_size`` taps span ``kernel_size`` output samples; the
    resize-convolution runs its conv at the output rate, so it keeps that span, rounded
    up to an odd size so ``same_padding`` keeps the length: 16 -> 17, 4 -> 5, 3 -> 3.
    """
    check_int("kernel_size", kernel_size, 1)
    return kernel_size + 1 - kernel_size % 2


def subpixel_kernel_size(kernel_size: int, stride: int) -> int:
    """Kernel of the input-rate conv in a subpixel upsampler that replaces a transposed conv.

    Each output sample of a transposed conv sees ``ceil(kernel_size / stride)`` input
    samples; the subpixel conv keeps that footprint at the input rate, rounded up to
    an odd size so ``same_padding`` keeps the length: (16, 8) -> 3, (4, 2) -> 3, (8, 8) -> 1.
    """
    check_int("kernel_size", kernel_size, 1)
    check_int("stride", stride, 1)
    footprint = ceil_div(kernel_size, stride)
    return footprint + 1 - footprint % 2


KERNEL_PER_STRIDE = 2  # HiFi-GAN's k = 2u: every output sample gets exactly two taps


def kernel_sizes_for_rates(
    upsample_rates: Sequence[int], kernel_per_stride: int = KERNEL_PER_STRIDE
) -> list[int]:
    """Upsample kernel sizes ``k = kernel_per_stride * u`` for each rate ``u``.

    A kernel that is a multiple of its stride overlaps evenly (no checkerboard from
    partial overlap): ``[8, 8, 2, 2] -> [16, 16, 4, 4]``, ``[5, 5, 4, 3] -> [10, 10, 8, 6]``.
    """
    check_int("kernel_per_stride", kernel_per_stride, 1)
    return [
        kernel_per_stride * check_int(f"upsample_rates[{i}]", rate, 1)
        for i, rate in enumerate(upsample_rates)
    ]


__all__ = [
    "check_int",
    "effective_kernel_size",
    "transposed_output_length",
    "same_padding",
    "output_size_range",
    "exact_padding",
    "exact_trim",
    "plan_upsample_rates",
    "receptive_field",
    "ceil_div",
    "resize_conv_kernel_size",
    "subpixel_kernel_size",
]


# ---- streaming context (appended for upsampler.streaming) -------------------------------
#
# A layer is described by ``(stride, left, right)``: output sample ``j`` (at ``stride`` times
# the input rate) reads input sample ``t`` only if ``t * stride`` lies in ``[j - left, j + right]``.


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


__all__ += [
    "conv_context",
    "transposed_context",
    "chain_context",
    "streaming_ready_length",
    "look_ahead_frames",
    "kernel_sizes_for_rates",
]

