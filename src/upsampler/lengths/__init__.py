"""Pure integer length arithmetic: the single source of truth for every length.

Three modules, each importing only the one before it:

- :mod:`~upsampler.lengths.padding`: the output-length formula, argument checks, and the
  ``(padding, output_padding)`` or trim that makes ``L_out == T * stride``;
- :mod:`~upsampler.lengths.stacks`: per-stage rates for a hop size, kernel sizes, receptive
  fields;
- :mod:`~upsampler.lengths.context`: the input context of streaming layers and stacks.

Everything is re-exported here: ``from upsampler.lengths import exact_padding`` is the way
in. Nothing here imports torch.
"""

from upsampler.lengths.context import (
    chain_context,
    conv_context,
    look_ahead_frames,
    streaming_ready_length,
    transposed_context,
)
from upsampler.lengths.padding import (
    ceil_div,
    check_int,
    effective_kernel_size,
    exact_padding,
    exact_trim,
    output_size_range,
    same_padding,
    transposed_output_length,
)
from upsampler.lengths.stacks import (
    HIFIGAN_NUM_UPSAMPLES,
    KERNEL_PER_STRIDE,
    kernel_sizes_for_rates,
    plan_upsample_rates,
    receptive_field,
    resize_conv_kernel_size,
    subpixel_kernel_size,
)

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
    "conv_context",
    "transposed_context",
    "chain_context",
    "streaming_ready_length",
    "look_ahead_frames",
    "kernel_sizes_for_rates",
    "HIFIGAN_NUM_UPSAMPLES",
    "KERNEL_PER_STRIDE",
]
