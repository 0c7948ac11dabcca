"""Generators assembled from layers, their presets and checkpoint import."""

from upsampler.models.checkpoint import load_hifigan
from upsampler.models.hifigan import PRESETS, HiFiGANGenerator

__all__ = ["HiFiGANGenerator", "PRESETS", "load_hifigan"]
