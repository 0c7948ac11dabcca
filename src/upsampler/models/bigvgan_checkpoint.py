"""Load BigVGAN generator checkpoints (``bigvgan_generator.pt``) into ``BigVGANGenerator``.

Accepted files: ``{"generator": state_dict}`` as BigVGAN saves them, or a bare state_dict,
with weight-norm keys in any torch form (``weight_g`` / ``weight_v``,
``parametrizations.weight.original0`` / ``original1``, or folded ``weight``): the key
handling is ``load_hifigan``'s. The Kaiser filters are buffers both in BigVGAN's files and
in our model (``...upsample.filter``, ``...downsample.lowpass.filter``), so a strict load
needs them. Every missing, unexpected or mis-shaped key is collected into one error.

Our generator nests BigVGAN's flat lists into stages; keys map one to one::

    ups.{i}.0.*                        stages.{i}.upsample.*
    resblocks.{i * num_kernels + j}.*  stages.{i}.mrf.resblocks.{j}.*
    conv_pre.*, activation_post.*, conv_post.*   (the same)

Files in three layouts load: BigVGAN's (``ups.{i}.0.*``), ours nested (``stages.*``), and
HiFi-GAN's flat one (``ups.{i}.*``, no ``.0``), which ``recipes/train.py`` wrote for BigVGAN
runs before it wrote BigVGAN's (:func:`bigvgan_layout`). ``bigvgan_state_dict`` writes
BigVGAN's (flat keys, ``weight_g`` / ``weight_v``), which its ``BigVGAN.load_state_dict``
accepts.
"""

from __future__ import annotations

import inspect
import re
from typing import Any, Mapping, Union

import torch
from torch import Tensor

from upsampler.models.bigvgan import PRESETS, BigVGANGenerator
from upsampler.models.checkpoint import (
    BIGVGAN_MARKERS,
    DATA_PARALLEL_PREFIX,
    LEGACY_SUFFIXES,
    PathLike,
    branches_per_stage,
    config_kwargs,
    flat_key,
    key_problems,
    nested_key,
    normalise_keys,
    read_state_dict,
)
from upsampler.models.generator import MelGenerator

Config = Union[PathLike, Mapping[str, Any], None]
FIELDS = tuple(inspect.signature(BigVGANGenerator.__init__).parameters)[1:]
UPSAMPLE_INFIX = ".0"  # BigVGAN keeps each upsampler in a one-element list: ups.i.0.*
# an upsampler key without BigVGAN's list index (HiFi-GAN's flat layout): ups.{i}.<not 0.>
_UPSAMPLE_WITHOUT_INFIX = re.compile(r"^ups\.(\d+)\.(?!0\.)(.*)$")


def bigvgan_flat_key(key: str, num_kernels: int) -> str:
    """Our nested state_dict key as BigVGAN's flat one (other keys unchanged)."""
    return flat_key(key, num_kernels, UPSAMPLE_INFIX)


def bigvgan_nested_key(key: str, num_kernels: int) -> str:
    """BigVGAN's flat state_dict key as our nested one (other keys unchanged)."""
    return nested_key(key, num_kernels, UPSAMPLE_INFIX)


def bigvgan_layout(state_dict: Mapping[str, Tensor], num_kernels: int) -> dict[str, Tensor]:
    """``state_dict`` under BigVGAN's flat names, whichever layout it was written in.

    Our nested ``stages.*`` keys and HiFi-GAN-style ``ups.{i}.*`` keys (``recipes/train.py``'s
    BigVGAN checkpoints before it wrote BigVGAN's layout) become ``ups.{i}.0.*``; a
    ``module.`` prefix (DataParallel) is dropped; weight-norm suffixes stay as they are. No
    upsampler has a submodule named ``0``, so ``ups.{i}.0.*`` can only be BigVGAN's index.
    """
    out = {}
    for key, tensor in state_dict.items():
        key = bigvgan_flat_key(key.removeprefix(DATA_PARALLEL_PREFIX), num_kernels)
        match = _UPSAMPLE_WITHOUT_INFIX.match(key)
        if match:
            key = f"ups.{match[1]}{UPSAMPLE_INFIX}.{match[2]}"
        out[key] = tensor
    return out


def bigvgan_state_dict(generator: MelGenerator) -> dict[str, Tensor]:
    """The generator's tensors in BigVGAN's layout: flat ``ups.{i}.0`` / ``resblocks.{n}``
    keys and ``weight_g`` / ``weight_v`` for weight norm (plain ``weight`` once folded), the
    form ``torch.save({"generator": ...})`` makes a ``bigvgan_generator.pt`` of."""
    num_kernels = branches_per_stage(generator)
    legacy = {suffix: name for name, suffix in LEGACY_SUFFIXES.items()}
    out = {}
    for key, tensor in generator.state_dict().items():
        key = bigvgan_flat_key(key, num_kernels)
        for suffix, name in legacy.items():
            if key.endswith(f".{suffix}"):
                key = f"{key[: -len(suffix)]}{name}"
                break
        out[key] = tensor
    return out


def bigvgan_kwargs(config: Config) -> dict[str, Any]:
    """``BigVGANGenerator`` arguments from BigVGAN's ``config.json`` path, a dict or a preset."""
    return config_kwargs(config, FIELDS, PRESETS, "BigVGAN")


def _check_is_bigvgan(state_dict: Mapping[str, Tensor], path: PathLike) -> None:
    """One-line ``ValueError`` for a checkpoint of another generator family (HiFi-GAN)."""
    if any(marker in key for key in state_dict for marker in BIGVGAN_MARKERS):
        return
    names = [key.removeprefix(DATA_PARALLEL_PREFIX) for key in state_dict]
    family = "a HiFi-GAN generator" if any(
        name.startswith("ups.0.") and not name.startswith("ups.0.0.") for name in names
    ) else "not a BigVGAN generator"
    raise ValueError(
        f"checkpoint_path {str(path)!r} is {family}: it has no Snake parameters "
        f"('resblocks.*.activations.*' or 'activation_post.*'); load a HiFi-GAN checkpoint "
        f"with load_hifigan"
    )


def _describe(kwargs: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in kwargs.items())


def load_bigvgan(checkpoint_path: PathLike, config: Config = None) -> BigVGANGenerator:
    """A ``BigVGANGenerator`` in eval mode (weight norm kept) with the checkpoint's weights.

    ``config``: BigVGAN's ``config.json`` path, a config dict, a preset name ("base_22k",
    "base_24k", "v2_24k_256x") or ``None`` to pick the preset whose keys and shapes match.
    Every layout of :func:`bigvgan_layout` loads. Raises ``ValueError`` listing every
    missing, unexpected and mis-shaped key (the model is only returned when all fit), or one
    line when the file holds a HiFi-GAN generator.
    """
    raw = read_state_dict(checkpoint_path)
    _check_is_bigvgan(raw, checkpoint_path)
    if config is None:
        candidates = [dict(PRESETS[name]) for name in PRESETS]
    else:
        candidates = [bigvgan_kwargs(config)]
    reports = []
    for kwargs in candidates:
        # several presets are probed on the meta device: keys and shapes, no 112 M weights
        probing = len(candidates) > 1
        with torch.device("meta" if probing else "cpu"):
            model = BigVGANGenerator(**kwargs)
        num_kernels = model.num_kernels
        expected = {bigvgan_flat_key(k, num_kernels): v for k, v in model.state_dict().items()}
        renamed, origin = normalise_keys(bigvgan_layout(raw, num_kernels), expected)
        problems = key_problems(renamed, origin, expected)
        if not problems:
            model = BigVGANGenerator(**kwargs) if probing else model
            nested = {bigvgan_nested_key(k, num_kernels): v for k, v in renamed.items()}
            model.load_state_dict(nested, strict=True)
            return model.eval()
        reports.append((len(problems), kwargs, problems))
    _, kwargs, problems = min(reports, key=lambda report: report[0])
    hint = "" if config is not None else " (closest preset shown; pass config= for others)"
    raise ValueError(
        f"checkpoint {str(checkpoint_path)!r} does not fit BigVGANGenerator({_describe(kwargs)})"
        f"{hint}: {len(problems)} problem(s):\n  " + "\n  ".join(problems)
    )
