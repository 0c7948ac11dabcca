"""Stack planning: per-layer strides for a hop size and the kernels that go with them.

A vocoder upsamples by its hop size in a few transposed-convolution stages; these functions
split the hop into per-stage rates, pick each stage's kernel (and the kernels of the
alternative upsamplers that replace it), and sum the receptive field of a conv stack.
Plain integer maths on top of :mod:`upsampler.lengths.padding`.
"""

from __future__ import annotations

from collections.abc import Sequence

from upsampler.lengths.padding import ceil_div, check_int, effective_kernel_size


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
    "HIFIGAN_NUM_UPSAMPLES", "KERNEL_PER_STRIDE", "kernel_sizes_for_rates",
    "plan_upsample_rates", "receptive_field", "resize_conv_kernel_size", "subpixel_kernel_size",
]
