"""Load and write generator checkpoints of either family, HiFi-GAN or BigVGAN, on one path.

Accepted files: ``{"generator": state_dict}`` (HiFi-GAN's ``g_*`` files, BigVGAN's
``bigvgan_generator.pt``) or a bare state_dict, optionally with a ``module.`` prefix
(DataParallel); keys in the family's flat layout or our nested one, weight norm in any torch
form (:mod:`~upsampler.models.key_layout`). BigVGAN files also load in HiFi-GAN's flat
layout, which ``recipes/train.py`` wrote for BigVGAN runs before it wrote BigVGAN's. The
Kaiser filters are buffers in BigVGAN's files and in our model, so a strict load needs them.

:func:`load_generator` is what ``load_hifigan`` and ``load_bigvgan`` run, over a row of the
family table (:mod:`~upsampler.models.family`):

1. another family's file is refused in one line naming its loader (the table's markers);
2. each candidate config (the one given, or every preset) is probed on the meta device:
   keys and shapes only, no weights allocated or initialised (112 M for BigVGAN v2);
3. only the candidate that fits is built and loaded strictly; otherwise one ``ValueError``
   lists the missing, unexpected and mis-shaped keys (the first dozen, then a count) and
   names the preset that fits when another config was given.

``hifigan_state_dict`` and ``bigvgan_state_dict`` write the originals' layouts (flat keys,
``weight_g`` / ``weight_v``), which their own ``load_state_dict`` accepts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import torch
from torch import Tensor

from upsampler.models.bigvgan import BigVGANGenerator
from upsampler.models.family import BIGVGAN, FAMILIES, HIFIGAN, Config, Family, PathLike
from upsampler.models.generator import GeneratorT, MelGenerator
from upsampler.models.hifigan import HiFiGANGenerator
from upsampler.models.key_layout import (  # the key helpers, importable from here as before
    branches_per_stage,
    flat_key,
    flat_state_dict,
    key_problems,
    nested_key,
    normalise_keys,
)

GENERATOR_KEY = "generator"
MAX_PROBLEMS_SHOWN = 12  # the mismatch error lists this many, then a count of the rest


def read_state_dict(checkpoint_path: PathLike) -> dict[str, Tensor]:
    """The generator's tensors from a ``{"generator": ...}`` file or a bare state_dict file."""
    path = Path(checkpoint_path)
    if not path.is_file():
        raise ValueError(f"checkpoint_path {str(path)!r} does not exist or is not a file")
    try:
        raw = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises several unrelated types for bad files
        raise ValueError(f"checkpoint_path {str(path)!r} is not a torch checkpoint: {err}") from err
    if isinstance(raw, Mapping) and isinstance(raw.get(GENERATOR_KEY), Mapping):
        raw = raw[GENERATOR_KEY]
    if not isinstance(raw, Mapping) or not all(isinstance(v, Tensor) for v in raw.values()):
        found = sorted(map(str, raw)) if isinstance(raw, Mapping) else type(raw).__name__
        raise ValueError(
            f"checkpoint_path {str(path)!r} holds neither a state_dict nor a dict with key "
            f"{GENERATOR_KEY!r}; found {found}"
        )
    for key, tensor in raw.items():  # refuse broken weights here, not as every output's NaN
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            bad = int((~torch.isfinite(tensor)).sum())
            raise ValueError(
                f"checkpoint_path {str(path)!r}: tensor {key!r} {tuple(tensor.shape)} has {bad} "
                f"NaN or Inf value(s); the checkpoint is damaged (first bad tensor named)"
            )
    return dict(raw)


def check_family(family: Family, state_dict: Mapping[str, Tensor], path: PathLike) -> None:
    """One-line ``ValueError`` when ``state_dict`` is another family's generator: it has
    that family's evidence (``Family.evidence``), or lacks ``family``'s own markers."""
    others = [other for other in FAMILIES if other is not family]
    for other in others:
        evidence = other.evidence(state_dict)
        if evidence is not None:
            raise ValueError(
                f"checkpoint_path {str(path)!r} is a {other.name} generator checkpoint, not "
                f"{family.name} (it has key {evidence!r}): load it with {other.loader}; "
                f"recipes: pass the config.json it was trained with as "
                f"model_config=<config.json>, or model={other.model_prefix}<preset>"
            )
    if family.markers and not family.has_markers(state_dict):
        seen = next((other for other in others if other.upsampler_key(state_dict)), None)
        what = f"a {seen.name} generator" if seen else f"not a {family.name} generator"
        suggested = seen or others[0]
        raise ValueError(
            f"checkpoint_path {str(path)!r} is {what}: it has no {family.marker_names}; "
            f"load a {suggested.name} checkpoint with {suggested.loader}"
        )


def probe(family: Family[GeneratorT], kwargs: Mapping[str, Any]) -> GeneratorT:
    """``family.generator(**kwargs)`` on the meta device: every key and shape, no memory
    and no initialisation cost."""
    with torch.device("meta"):
        return family.generator(**kwargs)


def load_generator(family: Family[GeneratorT], checkpoint_path: PathLike,
                   config: Config = None) -> GeneratorT:
    """``family``'s generator in eval mode (weight norm kept) with the checkpoint's weights.

    ``config``: the family's ``config.json`` path, a config dict, a preset name, or ``None``
    to pick the preset whose keys and shapes match. Every candidate is probed on the meta
    device; only the one that fits is built. Raises ``ValueError`` in one line for another
    family's file, else listing the key problems of the closest candidate.
    """
    state_dict = read_state_dict(checkpoint_path)
    check_family(family, state_dict, checkpoint_path)
    if config is None:
        candidates = [dict(kwargs) for kwargs in family.presets.values()]
    else:
        candidates = [family.kwargs(config)]
    reports = []
    for kwargs in candidates:
        tensors, problems = family.fit(probe(family, kwargs), state_dict)
        if not problems:  # the probe's keys are the real model's
            model = family.generator(**kwargs)
            model.load_state_dict(tensors, strict=True)
            return model.eval()
        reports.append((len(problems), kwargs, problems))
    _, kwargs, problems = min(reports, key=lambda report: report[0])
    hint = "" if config is not None else " (closest preset shown; pass config= for others)"
    shown = problems[:MAX_PROBLEMS_SHOWN]
    more = len(problems) - len(shown)
    lines = shown + ([f"... and {more} more"] if more else [])
    fitting = [] if config is None else fitting_presets(family, state_dict)
    advice = (f"\nhint: the checkpoint fits preset {fitting[0]!r}: pass config={fitting[0]!r} "
              f"(recipes: model_config={fitting[0]})" if fitting else "")
    raise ValueError(
        f"checkpoint {str(checkpoint_path)!r} does not fit "
        f"{family.generator.__name__}({_describe(kwargs)}){hint}: {len(problems)} "
        f"problem(s):\n  " + "\n  ".join(lines) + advice
    )


def fitting_presets(family: Family, state_dict: Mapping[str, Tensor]) -> list[str]:
    """Names of ``family``'s presets whose keys and shapes the checkpoint fits exactly."""
    return [name for name, kwargs in family.presets.items()
            if not family.fit(probe(family, kwargs), state_dict)[1]]


def _describe(kwargs: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in kwargs.items())


def load_hifigan(checkpoint_path: PathLike, config: Config = None) -> HiFiGANGenerator:
    """A ``HiFiGANGenerator`` in eval mode (weight norm kept) with the checkpoint's weights.

    ``config``: HiFi-GAN's ``config.json`` path, a config dict, a preset name ("v1", "v2",
    "v3") or ``None`` to pick the preset whose keys and shapes match. Raises ``ValueError``
    listing every missing, unexpected and mis-shaped key; the model is only built and
    returned when all fit. A BigVGAN file (Snake parameters, or upsamplers under
    ``ups.{i}.0.*``) is one ``ValueError`` line naming ``load_bigvgan`` instead.
    """
    return load_generator(HIFIGAN, checkpoint_path, config)


def load_bigvgan(checkpoint_path: PathLike, config: Config = None) -> BigVGANGenerator:
    """A ``BigVGANGenerator`` in eval mode (weight norm kept) with the checkpoint's weights.

    ``config``: BigVGAN's ``config.json`` path, a config dict, a preset name ("base_22k",
    "base_24k", "v2_24k_256x") or ``None`` to pick the preset whose keys and shapes match.
    BigVGAN's layout, HiFi-GAN's flat one and our nested one load. Raises ``ValueError``
    listing every missing, unexpected and mis-shaped key (the model is only returned when
    all fit), or one line when the file holds a HiFi-GAN generator.
    """
    return load_generator(BIGVGAN, checkpoint_path, config)


def hifigan_state_dict(generator: MelGenerator) -> dict[str, Tensor]:
    """The generator's weights in HiFi-GAN's checkpoint layout: flat ``ups.i`` /
    ``resblocks.n`` keys and ``weight_g`` / ``weight_v`` for weight norm (plain ``weight``
    once folded), the form jik876/hifi-gan's ``Generator.load_state_dict`` reads and
    ``torch.save({"generator": ...})`` makes a ``g_*`` file of."""
    return HIFIGAN.release_state_dict(generator)


def bigvgan_state_dict(generator: MelGenerator) -> dict[str, Tensor]:
    """The generator's tensors in BigVGAN's layout: flat ``ups.{i}.0`` / ``resblocks.{n}``
    keys and ``weight_g`` / ``weight_v`` for weight norm (plain ``weight`` once folded), the
    form ``torch.save({"generator": ...})`` makes a ``bigvgan_generator.pt`` of."""
    return BIGVGAN.release_state_dict(generator)


def generator_kwargs(config: Config) -> dict[str, Any]:
    """``HiFiGANGenerator`` arguments from a ``config.json`` path, a dict or a preset name."""
    return HIFIGAN.kwargs(config)


def bigvgan_kwargs(config: Config) -> dict[str, Any]:
    """``BigVGANGenerator`` arguments from BigVGAN's ``config.json`` path, a dict or a preset."""
    return BIGVGAN.kwargs(config)


__all__ = [
    "bigvgan_kwargs", "bigvgan_state_dict", "check_family", "fitting_presets",
    "generator_kwargs", "hifigan_state_dict", "load_bigvgan", "load_generator", "load_hifigan",
    "probe", "read_state_dict",
    # key_layout's, re-exported
    "branches_per_stage", "flat_key", "flat_state_dict", "key_problems", "nested_key",
    "normalise_keys",
]
