"""The two generator families, HiFi-GAN and BigVGAN, as one table; which one a config or a model is.

A :class:`Family` row holds what differs between the families' checkpoints: the generator
class (and with it the presets and the constructor's fields), the key layout of released
files (the upsampler infix of :mod:`~upsampler.models.key_layout`: ``ups.{i}.*`` or
``ups.{i}.0.*``), the keys that only its files have (BigVGAN's Snake parameters), and how
errors name its loader and its recipe model configs. Everything else is written once, over
the table: the loader and writers in :mod:`~upsampler.models.checkpoint`, and here
:func:`release_state_dict` (a trained generator in its family's release layout) and
:func:`fit_state_dict` (either family's tensors, in any layout its loader accepts, read back
into a built generator, so BigVGAN pairs written before the release layout still resume).
:func:`describes_bigvgan` tells a ``config.json`` (ours from ``recipes/train.py``, or
BigVGAN's own), a config dict or a preset name of BigVGAN from one of HiFi-GAN: BigVGAN's
configs name fields HiFi-GAN has not (``activation``, ``snake_logscale``, ...).
"""

from __future__ import annotations

import inspect
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, Mapping, Optional, Sequence, Union

from torch import Tensor

from upsampler.models.bigvgan import BigVGANGenerator
from upsampler.models.generator import GeneratorT, MelGenerator
from upsampler.models.hifigan import HiFiGANGenerator
from upsampler.models.key_layout import (
    DATA_PARALLEL_PREFIX,
    branches_per_stage,
    flat_state_dict,
    key_problems,
    legacy_weight_norm,
    nested_key,
    normalise_keys,
    upsample_key_pattern,
)

PathLike = Union[str, "os.PathLike[str]"]
Config = Union[PathLike, Mapping[str, Any], None]


def config_kwargs(config: Config, fields: Sequence[str], presets: Mapping[str, Any],
                  family: str) -> dict[str, Any]:
    """Constructor ``fields`` from a ``config.json`` path, a config dict or a preset name.

    Only the generator's fields are taken (``config.json`` also holds training and audio
    settings); ``family`` names the model in errors ("HiFi-GAN", "BigVGAN").
    """
    if isinstance(config, Mapping):
        return {k: v for k, v in config.items() if k in fields}
    if isinstance(config, str) and config.lower() in presets:
        return dict(presets[config.lower()])
    if isinstance(config, (str, os.PathLike)):
        path = Path(config)
        if not path.is_file():
            raise ValueError(
                f"config must be a preset name {sorted(presets)}, a config dict or a path to "
                f"{family}'s config.json; {str(config)!r} is none of these"
            )
        try:
            loaded = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as err:
            raise ValueError(f"config file {str(path)!r} is not readable JSON: {err}") from err
        return config_kwargs(loaded, fields, presets, family)
    raise TypeError(
        f"config must be a preset name, a dict, a path or None, got {type(config).__name__}"
    )


@dataclass(frozen=True)
class Family(Generic[GeneratorT]):
    """One generator family's row: its generator and what its checkpoint files look like."""

    name: str  # in messages: "HiFi-GAN", "BigVGAN"
    generator: type[GeneratorT]
    upsample_infix: str  # what follows ups.{i} in its files: "" or ".0"
    markers: tuple[str, ...]  # key fragments every file of it has and no other family's has
    marker_names: str  # the markers in words, for errors
    loader: str  # its public loader, which other families' errors point to
    model_prefix: str  # its recipe model configs are model=<model_prefix><preset>

    @property
    def presets(self) -> Mapping[str, Mapping[str, Any]]:
        """The generator's named configurations (``generator.presets``)."""
        return self.generator.presets

    @property
    def fields(self) -> tuple[str, ...]:
        """The constructor's arguments: the ``config.json`` fields a config gives it."""
        return tuple(inspect.signature(self.generator.__init__).parameters)[1:]

    def kwargs(self, config: Config) -> dict[str, Any]:
        """Constructor arguments from a ``config.json`` path, a config dict or a preset name."""
        return config_kwargs(config, self.fields, self.presets, self.name)

    def upsampler_key(self, state_dict: Mapping[str, Tensor]) -> Optional[str]:
        """The first key that is an upsampler's in this family's flat layout, or None."""
        pattern = upsample_key_pattern(self.upsample_infix)
        return next((key for key in state_dict
                     if pattern.match(key.removeprefix(DATA_PARALLEL_PREFIX))), None)

    def has_markers(self, state_dict: Mapping[str, Tensor]) -> bool:
        """Whether any key holds one of the family's ``markers``."""
        return any(marker in key for key in state_dict for marker in self.markers)

    def evidence(self, state_dict: Mapping[str, Tensor]) -> Optional[str]:
        """The first key only this family's files have (a marker, or an upsampler under its
        infix), or None. Infix-less ``ups.{i}.*`` keys are no evidence: BigVGAN files
        written before its release layout have them too."""
        own_layout = upsample_key_pattern(self.upsample_infix) if self.upsample_infix else None
        for key in state_dict:
            name = key.removeprefix(DATA_PARALLEL_PREFIX)
            if any(marker in name for marker in self.markers) or (
                    own_layout is not None and own_layout.match(name)):
                return key
        return None

    def release_state_dict(self, generator: MelGenerator) -> dict[str, Tensor]:
        """The generator's tensors in this family's release layout: flat ``ups`` /
        ``resblocks`` keys and ``weight_g`` / ``weight_v`` for weight norm (plain ``weight``
        once folded), the form ``torch.save({"generator": ...})`` makes a release file of."""
        return legacy_weight_norm(flat_state_dict(generator, self.upsample_infix))

    def fit(self, generator: MelGenerator, state_dict: Mapping[str, Tensor],
            ) -> tuple[dict[str, Tensor], list[str]]:
        """``state_dict`` renamed to ``generator.state_dict()``'s keys, and every key problem
        (missing, unexpected and mis-shaped keys, one line each; none: ready for a strict
        ``load_state_dict``). Any layout and weight-norm form ``normalise_keys`` reads."""
        num_kernels = branches_per_stage(generator)
        infix = self.upsample_infix
        expected = flat_state_dict(generator, infix)
        renamed, origin = normalise_keys(state_dict, expected, num_kernels, infix)
        problems = key_problems(renamed, origin, expected)
        return {nested_key(k, num_kernels, infix): v for k, v in renamed.items()}, problems


HIFIGAN = Family(
    name="HiFi-GAN", generator=HiFiGANGenerator, upsample_infix="", markers=(),
    marker_names="", loader="load_hifigan", model_prefix="hifigan_",
)
BIGVGAN = Family(
    name="BigVGAN", generator=BigVGANGenerator, upsample_infix=".0",
    markers=(".activations.", "activation_post."),  # Snake parameters: blocks, after stages
    marker_names="Snake parameters ('resblocks.*.activations.*' or 'activation_post.*')",
    loader="load_bigvgan", model_prefix="bigvgan_",
)
FAMILIES: tuple[Family, ...] = (HIFIGAN, BIGVGAN)

# constructor fields a BigVGAN config has and a HiFi-GAN one has not
BIGVGAN_ONLY_FIELDS = tuple(name for name in BIGVGAN.fields if name not in HIFIGAN.fields)


def family_of(generator: MelGenerator) -> Family:
    """The family whose generator class ``generator`` is; HiFi-GAN's plain layout for any
    other ``MelGenerator``."""
    return next((f for f in FAMILIES if isinstance(generator, f.generator)), HIFIGAN)


def describes_bigvgan(config: Any) -> bool:
    """True when ``config`` (a config dict, a ``config.json`` path or a preset name) is a
    BigVGAN generator's: a dict or JSON naming any of ``BIGVGAN_ONLY_FIELDS``, or one of
    BigVGAN's preset names. HiFi-GAN presets, other names and other values are False; an
    unreadable ``*.json`` is a ``ValueError`` naming the file."""
    if isinstance(config, Mapping):
        return any(field in config for field in BIGVGAN_ONLY_FIELDS)
    if not isinstance(config, (str, os.PathLike)):
        return False
    if isinstance(config, str) and config.lower() in BIGVGAN.presets:
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
    """The generator's tensors in its family's release layout: BigVGAN's ``ups.{i}.0.*``
    for a ``BigVGANGenerator``, HiFi-GAN's ``ups.{i}.*`` for every other generator."""
    return family_of(generator).release_state_dict(generator)


def fit_state_dict(generator: MelGenerator, state_dict: Mapping[str, Tensor],
                   ) -> tuple[dict[str, Tensor], list[str]]:
    """``state_dict`` renamed to ``generator.state_dict()``'s keys, and every key problem.

    Accepts any weight-norm key form and, for a ``BigVGANGenerator``, BigVGAN's layout,
    HiFi-GAN's flat one and our nested one; other generators take HiFi-GAN's flat or our
    nested layout. The tensors are only ready for ``load_state_dict(strict=True)`` when
    the problem list (missing, unexpected and mis-shaped keys, one line each) is empty.
    """
    return family_of(generator).fit(generator, state_dict)


__all__ = [
    "BIGVGAN", "BIGVGAN_ONLY_FIELDS", "FAMILIES", "HIFIGAN", "Family", "describes_bigvgan",
    "family_of", "fit_state_dict", "release_state_dict",
]
