"""State-dict key names: our nested generator layout and the families' flat release layouts.

Our generator nests the originals' flat lists into stages; keys map one to one::

    ups.{i}{infix}.*                   stages.{i}.upsample.*
    resblocks.{i * num_kernels + j}.*  stages.{i}.mrf.resblocks.{j}.*
    conv_pre.*, activation_post.*, conv_post.*   (the same)

``infix`` is what follows ``ups.{i}`` in a family's files: nothing for HiFi-GAN, ``.0`` for
BigVGAN (each upsampler sits in a one-element list). Every convolution ``P`` may carry
weight norm in any torch form::

    P.weight_g, P.weight_v                    torch.nn.utils.weight_norm (the originals)
    P.parametrizations.weight.original0/1     torch.nn.utils.parametrizations.weight_norm
    P.weight                                  weight norm already removed

:func:`normalise_keys` renames a file's keys, in any of these, to the flat layout and the
parametrization form of a built model; :func:`key_problems` lists what still does not fit;
:func:`legacy_weight_norm` writes the originals' ``weight_g`` / ``weight_v``.
"""

from __future__ import annotations

import functools
import re
from typing import Mapping

import torch
from torch import Tensor

from upsampler.models.generator import MelGenerator

GAIN, DIRECTION = "parametrizations.weight.original0", "parametrizations.weight.original1"
LEGACY_SUFFIXES = {"weight_g": GAIN, "weight_v": DIRECTION}
DATA_PARALLEL_PREFIX = "module."
_NESTED_UPSAMPLE = re.compile(r"^stages\.(\d+)\.upsample\.(.*)$")
_NESTED_RESBLOCK = re.compile(r"^stages\.(\d+)\.mrf\.resblocks\.(\d+)\.(.*)$")
_FLAT_RESBLOCK = re.compile(r"^resblocks\.(\d+)\.(.*)$")
# an upsampler key without an infix: ups.{i}.<not 0.> (no upsampler has a submodule "0")
_UPSAMPLE_WITHOUT_INFIX = re.compile(r"^ups\.(\d+)\.(?!0\.)(.*)$")


def flat_key(key: str, num_kernels: int, upsample_infix: str = "") -> str:
    """Our nested state_dict key as the original's flat one (other keys unchanged).

    ``upsample_infix`` is what follows ``ups.i`` in the original (BigVGAN keeps each
    upsampler in a one-element list: ``".0"``; HiFi-GAN nothing).
    """
    match = _NESTED_UPSAMPLE.match(key)
    if match:
        return f"ups.{match[1]}{upsample_infix}.{match[2]}"
    match = _NESTED_RESBLOCK.match(key)
    if match:
        return f"resblocks.{int(match[1]) * num_kernels + int(match[2])}.{match[3]}"
    return key


@functools.lru_cache(maxsize=None)
def _flat_upsample(upsample_infix: str) -> re.Pattern[str]:
    return re.compile(rf"^ups\.(\d+){re.escape(upsample_infix)}\.(.*)$")


def nested_key(key: str, num_kernels: int, upsample_infix: str = "") -> str:
    """The original's flat state_dict key as our nested one (other keys unchanged)."""
    match = _flat_upsample(upsample_infix).match(key)
    if match:
        return f"stages.{match[1]}.upsample.{match[2]}"
    match = _FLAT_RESBLOCK.match(key)
    if match:
        stage, branch = divmod(int(match[1]), num_kernels)
        return f"stages.{stage}.mrf.resblocks.{branch}.{match[2]}"
    return key


def upsample_key_pattern(upsample_infix: str) -> re.Pattern[str]:
    """What an upsampler key looks like in the flat layout with ``upsample_infix``:
    ``ups.{i}{infix}.*``; with none, ``ups.{i}.*`` whose rest does not start with ``0.``
    (that is BigVGAN's list index)."""
    return _flat_upsample(upsample_infix) if upsample_infix else _UPSAMPLE_WITHOUT_INFIX


def branches_per_stage(generator: MelGenerator) -> int:
    """The number of residual blocks in every stage's MRF (HiFi-GAN's ``num_kernels``)."""
    counts = {len(stage.mrf.resblocks) for stage in generator.stages}
    if len(counts) != 1:
        raise ValueError(
            f"generator stages must all have the same number of resblocks for the flat "
            f"layout, got {sorted(counts)}"
        )
    return counts.pop()


def flat_state_dict(generator: MelGenerator, upsample_infix: str = "") -> dict[str, Tensor]:
    """``generator.state_dict()`` under the original's flat names (weight-norm names as
    the model has them)."""
    num_kernels = branches_per_stage(generator)
    return {flat_key(k, num_kernels, upsample_infix): v
            for k, v in generator.state_dict().items()}


def legacy_weight_norm(state_dict: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """``state_dict`` with parametrization weight norm renamed to the originals'
    ``weight_g`` / ``weight_v`` (plain ``weight`` and other keys unchanged)."""
    legacy = {suffix: name for name, suffix in LEGACY_SUFFIXES.items()}
    out = {}
    for key, tensor in state_dict.items():
        for suffix, name in legacy.items():
            if key.endswith(f".{suffix}"):
                key = f"{key[: -len(suffix)]}{name}"
                break
        out[key] = tensor
    return out


def normalise_keys(
    state_dict: Mapping[str, Tensor],
    expected: Mapping[str, Tensor],
    num_kernels: int = 1,
    upsample_infix: str = "",
) -> tuple[dict[str, Tensor], dict[str, str]]:
    """Rename every key to the flat layout and the parametrization form ``expected`` uses.

    A ``module.`` prefix (DataParallel) is dropped. ``num_kernels`` (resblocks per stage)
    places our nested ``stages.i.mrf.resblocks.j`` keys in the flat list; keys of a lone
    block have no stage and need none. With an ``upsample_infix`` (BigVGAN's ``.0``),
    nested keys and infix-less ``ups.{i}.*`` keys (HiFi-GAN's layout, which
    ``recipes/train.py`` wrote for BigVGAN runs before it wrote BigVGAN's) both become
    ``ups.{i}{infix}.*``.

    Returns the renamed tensors and, for error messages, each new key's name in the file.
    A plain ``P.weight`` where ``expected`` has weight norm becomes ``g = ||w||`` (over all
    but dim 0) and ``v = w``, which reproduces ``w`` in the forward.
    """
    renamed: dict[str, Tensor] = {}
    origin: dict[str, str] = {}
    for key, tensor in state_dict.items():
        name = flat_key(key.removeprefix(DATA_PARALLEL_PREFIX), num_kernels, upsample_infix)
        match = _UPSAMPLE_WITHOUT_INFIX.match(name) if upsample_infix else None
        if match:
            name = f"ups.{match[1]}{upsample_infix}.{match[2]}"
        prefix, _, suffix = name.rpartition(".")
        if suffix in LEGACY_SUFFIXES:
            targets = {f"{prefix}.{LEGACY_SUFFIXES[suffix]}": tensor}
        elif suffix == "weight" and f"{prefix}.{GAIN}" in expected and tensor.dim() > 1:
            norm_dims = tuple(range(1, tensor.dim()))
            gain = torch.linalg.vector_norm(tensor, dim=norm_dims, keepdim=True)
            targets = {f"{prefix}.{GAIN}": gain, f"{prefix}.{DIRECTION}": tensor}
        else:
            targets = {name: tensor}
        for new_key, value in targets.items():
            renamed[new_key] = value
            origin[new_key] = key
    return renamed, origin


def key_problems(
    state_dict: Mapping[str, Tensor], origin: Mapping[str, str], expected: Mapping[str, Tensor]
) -> list[str]:
    """Every missing, unexpected and mis-shaped key, one line each (empty when all fit)."""
    missing = [k for k in expected if k not in state_dict]
    unexpected = [origin[k] for k in state_dict if k not in expected]
    mismatched = [
        f"{origin[k]}: checkpoint {tuple(v.shape)} vs model {tuple(expected[k].shape)}"
        for k, v in state_dict.items()
        if k in expected and v.shape != expected[k].shape
    ]
    lines = [f"missing key: {k}" for k in missing]
    lines += [f"unexpected key: {k}" for k in sorted(set(unexpected))]
    return lines + [f"shape mismatch: {m}" for m in mismatched]


__all__ = [
    "DATA_PARALLEL_PREFIX", "DIRECTION", "GAIN", "LEGACY_SUFFIXES", "branches_per_stage",
    "flat_key", "flat_state_dict", "key_problems", "legacy_weight_norm", "nested_key",
    "normalise_keys", "upsample_key_pattern",
]
