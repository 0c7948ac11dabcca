"""The from-scratch 1-D transposed convolution: the op, its checks, its plan and its module.

- :mod:`~upsampler.conv_transpose.functional`: ``conv_transpose1d`` and its autograd rules;
- :mod:`~upsampler.conv_transpose.module`: ``ConvTranspose1d``, a drop-in for torch's module;
- :mod:`~upsampler.conv_transpose.dispatch`: the one place that picks a kernel per call;
- :mod:`~upsampler.conv_transpose.kernels`: the formulations, one file each;
- :mod:`~upsampler.conv_transpose.plan` and :mod:`~upsampler.conv_transpose.checks`: where
  each tap lands, and the argument checks.
"""

from upsampler.conv_transpose.functional import conv_transpose1d
from upsampler.conv_transpose.module import ConvTranspose1d, TrimmedConvTranspose1d

__all__ = ["ConvTranspose1d", "TrimmedConvTranspose1d", "conv_transpose1d"]
