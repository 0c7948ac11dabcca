"""Which generator family (HiFi-GAN or BigVGAN) a config or a model is, and its key layout.

A trained generator is written in its family's release layout (:func:`release_state_dict`):
HiFi-GAN's flat ``ups.{i}.*`` keys (``hifigan_state_dict``) or BigVGAN's ``ups.{i}.0.*``
(``bigvgan_state_dict``). :func:`fit_state_dict` reads either family's tensors back into a
built generator, BigVGAN's in all the layouts ``bigvgan_layout`` accepts (so BigVGAN pairs
written before the release layout still resume). :func:`describes_bigvgan` tells a
``config.json`` (ours from ``recipes/train.py``, or BigVGAN's own), a config dict or a preset
name of BigVGAN from one of HiFi-GAN: BigVGAN's configs name fields HiFi-GAN has not
(``activation``, ``snake_logscale``, ...).
"""

from __future__ import annotations

import inspect
import json
import os
from pathlib import Path
from typing import Any, Mapping

from torch import Tensor

from upsampler.models.bigvgan import PRESETS as BIGVGAN_PRESETS
from upsampler.models.bigvgan import BigVGANGenerator
from upsampler.models.bigvgan_checkpoint import (
    UPSAMPLE_INFIX,
    bigvgan_layout,
    bigvgan_state_dict,
)
from upsampler.models.checkpoint import (
    branches_per_stage,
    flat_key,
    hifigan_state_dict,
    key_problems,
    nested_key,
    normalise_keys,
)
from upsampler.models.generator import MelGenerator
from upsampler.models.hifigan import HiFiGANGenerator

_HIFIGAN_FIELDS = set(tuple(inspect.signature(HiFiGANGenerator.__init__).parameters)[1:])
# constructor fields a BigVGAN config has and a HiFi-GAN one has not
BIGVGAN_ONLY_FIELDS = tuple(
    name for name in tuple(inspect.signature(BigVGANGenerator.__init__).parameters)[1:]
    if name not in _HIFIGAN_FIELDS
)


def describes_bigvgan(config: Any) -> bool:
    """True when ``config`` (a config dict, a ``config.json`` path or a preset name) is a
    BigVGAN generator's: a dict or JSON naming any of ``BIGVGAN_ONLY_FIELDS``, or one of
    BigVGAN's preset names. HiFi-GAN presets, other names and other values are False; an
    unreadable ``*.json`` is a ``ValueError`` naming the file."""
    if isinstance(config, Mapping):
        return any(field in config for field in BIGVGAN_ONLY_FIELDS)
    if not isinstance(config, (str, os.PathLike)):
        return False
    if isinstance(config, str) and config.lower() in BIGVGAN_PRESETS:
        return True
    path = Path(config).expanduser()
    if path.suffix != ".json" or not path.is_file():
        return False
    try:
        loaded = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise ValueError(f"config {str(path)!r} is not readable JSON: {error}") from error
    return isinstance(loaded, Mapping) and describes_bigvgan(loaded)


def release_state_dict(generator: MelGenerator) -> dict[str, Tensor]:
    """The generator's tensors in its family's release layout: ``bigvgan_state_dict`` for a
    ``BigVGANGenerator``, ``hifigan_state_dict`` for every other generator."""
    if isinstance(generator, BigVGANGenerator):
        return bigvgan_state_dict(generator)
    return hifigan_state_dict(generator)


def fit_state_dict(generator: MelGenerator, state_dict: Mapping[str, Tensor],
                   ) -> tuple[dict[str, Tensor], list[str]]:
    """``state_dict`` renamed to ``generator.state_dict()``'s keys, and every key problem.

    Accepts any weight-norm key form and, for a ``BigVGANGenerator``, every BigVGAN layout
    (``bigvgan_layout``); other generators take HiFi-GAN's flat or our nested layout. The
    tensors are only ready for ``load_state_dict(strict=True)`` when the problem list
    (missing, unexpected and mis-shaped keys, one line each) is empty.
    """
    num_kernels = branches_per_stage(generator)
    infix = UPSAMPLE_INFIX if isinstance(generator, BigVGANGenerator) else ""
    if infix:
        state_dict = bigvgan_layout(state_dict, num_kernels)
    expected = {flat_key(k, num_kernels, infix): v for k, v in generator.state_dict().items()}
    renamed, origin = normalise_keys(state_dict, expected, num_kernels)
    problems = key_problems(renamed, origin, expected)
    return {nested_key(k, num_kernels, infix): v for k, v in renamed.items()}, problems


__all__ = ["BIGVGAN_ONLY_FIELDS", "describes_bigvgan", "fit_state_dict", "release_state_dict"]
