"""Training support: data (``upsampler.training.data``), corpus preparation, validation metrics.

Import the submodules themselves; this package imports nothing at load time, so a TTS model
that uses the layers never pays for the training code.
"""
