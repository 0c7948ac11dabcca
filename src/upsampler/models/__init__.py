"""Generators assembled from layers, their presets and checkpoint import."""

from upsampler.models.bigvgan import BigVGANGenerator
from upsampler.models.checkpoint import (
    bigvgan_state_dict,
    hifigan_state_dict,
    load_bigvgan,
    load_hifigan,
)
from upsampler.models.generator import Clamp, MelGenerator
from upsampler.models.hifigan import PRESETS, HiFiGANGenerator

__all__ = [
    "MelGenerator", "Clamp", "HiFiGANGenerator", "PRESETS", "load_hifigan", "hifigan_state_dict",
    "BigVGANGenerator", "load_bigvgan", "bigvgan_state_dict",
]
