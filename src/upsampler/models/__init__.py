"""Generators assembled from layers, their presets and checkpoint import."""

from upsampler.models.checkpoint import hifigan_state_dict, load_hifigan
from upsampler.models.generator import Clamp, MelGenerator
from upsampler.models.hifigan import PRESETS, HiFiGANGenerator

__all__ = [
    "MelGenerator", "Clamp", "HiFiGANGenerator", "PRESETS", "load_hifigan", "hifigan_state_dict",
]
