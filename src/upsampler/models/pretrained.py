"""Generators trained with this package and shipped inside it.

``demo``: a 0.34 M-parameter HiFi-GAN-style generator (V2's width with V3's residual blocks,
our ``ConvTranspose1d`` upsampling ``[5, 5, 4, 2]`` = hop 200) trained by ``recipes/train.py``
on 16 kHz speech of one speaker (Allison Smith, Asterisk core sounds, CC-BY-SA-3.0; the
weights are shared under the same licence). Its folder holds the checkpoint in HiFi-GAN's
format, the run's ``config.json`` (which fixes the mel front end: 16 kHz, hop 200, 80 mels),
``TRAINING.md`` (command, steps, time, metrics) and ``COPYING``. It is a demo, not a
production vocoder: intelligible, buzzy speech.
"""

from __future__ import annotations

import json
from pathlib import Path

from upsampler.audio import MelSpectrogram, mel_kwargs_from_config
from upsampler.models.checkpoint import load_hifigan
from upsampler.models.hifigan import HiFiGANGenerator

PRETRAINED_DIR = Path(__file__).resolve().parents[1] / "pretrained"
PRETRAINED = ("demo",)
CHECKPOINT_NAME = "generator.pt"
CONFIG_NAME = "config.json"


def pretrained_files(name: str) -> tuple[Path, Path]:
    """The checkpoint and ``config.json`` of the shipped generator ``name``."""
    if name not in PRETRAINED:
        raise ValueError(f"pretrained name must be one of {list(PRETRAINED)}, got {name!r}")
    folder = PRETRAINED_DIR / name
    return folder / CHECKPOINT_NAME, folder / CONFIG_NAME


def load_pretrained(name: str = "demo") -> tuple[HiFiGANGenerator, MelSpectrogram]:
    """The shipped generator ``name`` (weight norm kept, eval mode) and its mel front end.

    ``generator(mel_transform(wav))`` is copy synthesis at the rate the model was trained on
    (``mel_transform.sample_rate``).
    """
    checkpoint, config_path = pretrained_files(name)
    config = json.loads(config_path.read_text())
    generator = load_hifigan(checkpoint, config=config).eval()
    return generator, MelSpectrogram(**mel_kwargs_from_config(config))


__all__ = ["PRETRAINED", "PRETRAINED_DIR", "load_pretrained", "pretrained_files"]
