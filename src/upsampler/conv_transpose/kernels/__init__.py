"""The formulations of the transposed convolution's overlap-add, one module each.

Kernels compute; they never choose. :mod:`upsampler.conv_transpose.dispatch` picks one per
call and :mod:`upsampler.conv_transpose.functional` runs it.
"""
