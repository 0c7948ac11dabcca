"""``upsampler.functional``: the op's public functions, kept at their first import path."""

from upsampler.conv_transpose.functional import *  # noqa: F401,F403
from upsampler.conv_transpose.functional import __all__  # noqa: F401
