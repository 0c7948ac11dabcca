"""Generators assembled from layers, their presets and checkpoint import."""

from upsampler.models.bigvgan import BigVGANGenerator
from upsampler.models.bigvgan_checkpoint import load_bigvgan
from upsampler.models.checkpoint import load_hifigan
from upsampler.models.hifigan import PRESETS, HiFiGANGenerator

__all__ = ["HiFiGANGenerator", "PRESETS", "load_hifigan", "BigVGANGenerator", "load_bigvgan"]
