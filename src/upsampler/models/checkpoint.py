"""Load original HiFi-GAN checkpoints (any weight-norm key form) into ``HiFiGANGenerator``.

Accepted files: the original ``{"generator": state_dict}`` (``g_*`` files) or a bare
state_dict, optionally with a ``module.`` prefix (DataParallel). Accepted key forms for every
convolution ``P``::

    P.weight_g, P.weight_v                    torch.nn.utils.weight_norm (the original)
    P.parametrizations.weight.original0/1     torch.nn.utils.parametrizations.weight_norm
    P.weight                                  weight norm already removed

All are normalised to the parametrization form of our model; every missing, unexpected or
mis-shaped key is collected into one ``ValueError`` before anything is loaded.

Our generator nests the original's flat lists into stages; keys map one to one::

    ups.{i}.*                          stages.{i}.upsample.*
    resblocks.{i * num_kernels + j}.*  stages.{i}.mrf.resblocks.{j}.*
    conv_pre.*, conv_post.*            (the same)

Checkpoints in either layout load; ``hifigan_state_dict`` writes the original's (flat keys,
``weight_g`` / ``weight_v``), which its own ``Generator.load_state_dict`` accepts.
"""

from __future__ import annotations

import functools
import inspect
import json
import os
import re
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence, Union

import torch
from torch import Tensor

from upsampler.models.generator import MelGenerator
from upsampler.models.hifigan import PRESETS, HiFiGANGenerator

PathLike = Union[str, "os.PathLike[str]"]
Config = Union[PathLike, Mapping[str, Any], None]

GAIN, DIRECTION = "parametrizations.weight.original0", "parametrizations.weight.original1"
LEGACY_SUFFIXES = {"weight_g": GAIN, "weight_v": DIRECTION}
_NESTED_UPSAMPLE = re.compile(r"^stages\.(\d+)\.upsample\.(.*)$")
_NESTED_RESBLOCK = re.compile(r"^stages\.(\d+)\.mrf\.resblocks\.(\d+)\.(.*)$")
_FLAT_RESBLOCK = re.compile(r"^resblocks\.(\d+)\.(.*)$")
DATA_PARALLEL_PREFIX = "module."
GENERATOR_KEY = "generator"
MAX_PROBLEMS_SHOWN = 12  # the mismatch error lists this many, then a count of the rest
_GENERATOR_FIELDS = tuple(inspect.signature(HiFiGANGenerator.__init__).parameters)[1:]
# keys only a BigVGAN generator has: Snake parameters inside the blocks and after the stages
BIGVGAN_MARKERS = (".activations.", "activation_post.")
# BigVGAN's layout keeps each upsampler in a one-element list: ups.{i}.0.*
_BIGVGAN_UPSAMPLE = re.compile(r"^ups\.\d+\.0\.")


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


def branches_per_stage(generator: MelGenerator) -> int:
    """The number of residual blocks in every stage's MRF (HiFi-GAN's ``num_kernels``)."""
    counts = {len(stage.mrf.resblocks) for stage in generator.stages}
    if len(counts) != 1:
        raise ValueError(
            f"generator stages must all have the same number of resblocks for the flat "
            f"layout, got {sorted(counts)}"
        )
    return counts.pop()


def flat_state_dict(generator: MelGenerator) -> dict[str, Tensor]:
    """``generator.state_dict()`` under the original's flat names (weight-norm names as
    the model has them)."""
    num_kernels = branches_per_stage(generator)
    return {flat_key(k, num_kernels): v for k, v in generator.state_dict().items()}


def hifigan_state_dict(generator: MelGenerator) -> dict[str, Tensor]:
    """The generator's weights in the original checkpoint layout: flat ``ups.i`` /
    ``resblocks.n`` keys and ``weight_g`` / ``weight_v`` for weight norm (plain ``weight``
    once folded), the form jik876/hifi-gan's ``Generator.load_state_dict`` reads and
    ``torch.save({"generator": ...})`` makes a ``g_*`` file of."""
    legacy = {suffix: name for name, suffix in LEGACY_SUFFIXES.items()}
    out = {}
    for key, tensor in flat_state_dict(generator).items():
        for suffix, name in legacy.items():
            if key.endswith(f".{suffix}"):
                key = f"{key[: -len(suffix)]}{name}"
                break
        out[key] = tensor
    return out


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


def generator_kwargs(config: Config) -> dict[str, Any]:
    """``HiFiGANGenerator`` arguments from a ``config.json`` path, a dict or a preset name."""
    return config_kwargs(config, _GENERATOR_FIELDS, PRESETS, "HiFi-GAN")


def read_state_dict(checkpoint_path: PathLike) -> dict[str, Tensor]:
    """The generator's tensors from an original ``g_*`` file or a bare state_dict file."""
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


def normalise_keys(
    state_dict: Mapping[str, Tensor], expected: Mapping[str, Tensor], num_kernels: int = 1
) -> tuple[dict[str, Tensor], dict[str, str]]:
    """Rename every key to the flat layout and the parametrization form ``expected`` uses.

    ``num_kernels`` (resblocks per stage) places our nested ``stages.i.mrf.resblocks.j``
    keys in the flat list; keys of a lone block have no stage and need none.

    Returns the renamed tensors and, for error messages, each new key's original name. A
    plain ``P.weight`` where ``expected`` has weight norm becomes ``g = ||w||`` (over all but
    dim 0) and ``v = w``, which reproduces ``w`` in the forward.
    """
    renamed: dict[str, Tensor] = {}
    origin: dict[str, str] = {}
    for key, tensor in state_dict.items():
        name = key[len(DATA_PARALLEL_PREFIX):] if key.startswith(DATA_PARALLEL_PREFIX) else key
        name = flat_key(name, num_kernels)
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
    state_dict = read_state_dict(checkpoint_path)
    _check_not_bigvgan(state_dict, checkpoint_path)
    if config is None:
        candidates = [dict(PRESETS[name]) for name in PRESETS]
    else:
        candidates = [generator_kwargs(config)]
    reports = []
    for kwargs in candidates:
        model = HiFiGANGenerator(**kwargs)
        expected = flat_state_dict(model)
        renamed, origin = normalise_keys(state_dict, expected, model.num_kernels)
        problems = key_problems(renamed, origin, expected)
        if not problems:
            nested = {nested_key(k, model.num_kernels): v for k, v in renamed.items()}
            model.load_state_dict(nested, strict=True)
            return model.eval()
        reports.append((len(problems), kwargs, problems))
    _, kwargs, problems = min(reports, key=lambda report: report[0])
    hint = "" if config is not None else " (closest preset shown; pass config= for others)"
    shown = problems[:MAX_PROBLEMS_SHOWN]
    more = len(problems) - len(shown)
    lines = shown + ([f"... and {more} more"] if more else [])
    fitting = [] if config is None else _fitting_presets(state_dict)
    advice = (f"\nhint: the checkpoint fits preset {fitting[0]!r}: pass config={fitting[0]!r} "
              f"(recipes: model_config={fitting[0]})" if fitting else "")
    raise ValueError(
        f"checkpoint {str(checkpoint_path)!r} does not fit HiFiGANGenerator({_describe(kwargs)})"
        f"{hint}: {len(problems)} problem(s):\n  " + "\n  ".join(lines) + advice
    )


def bigvgan_evidence(state_dict: Mapping[str, Tensor]) -> Optional[str]:
    """The first key that only a BigVGAN generator has (a Snake parameter, or an upsampler
    under BigVGAN's ``ups.{i}.0.*``), or None when the tensors could be a HiFi-GAN's."""
    for key in state_dict:
        name = key.removeprefix(DATA_PARALLEL_PREFIX)
        if any(marker in name for marker in BIGVGAN_MARKERS) or _BIGVGAN_UPSAMPLE.match(name):
            return key
    return None


def _check_not_bigvgan(state_dict: Mapping[str, Tensor], path: PathLike) -> None:
    """One-line ``ValueError`` for a BigVGAN checkpoint handed to ``load_hifigan``."""
    evidence = bigvgan_evidence(state_dict)
    if evidence is not None:
        raise ValueError(
            f"checkpoint_path {str(path)!r} is a BigVGAN generator checkpoint, not HiFi-GAN "
            f"(it has key {evidence!r}): load it with load_bigvgan; recipes: pass the "
            f"config.json it was trained with as model_config=<config.json>, or "
            f"model=bigvgan_<preset>"
        )


def _fitting_presets(state_dict: Mapping[str, Tensor]) -> list[str]:
    """Names of the presets whose keys and shapes the checkpoint fits exactly."""
    fitting = []
    for name, kwargs in PRESETS.items():
        with torch.device("meta"):  # shapes only: no memory, no initialisation cost
            model = HiFiGANGenerator(**kwargs)
        expected = flat_state_dict(model)
        renamed, origin = normalise_keys(state_dict, expected, model.num_kernels)
        if not key_problems(renamed, origin, expected):
            fitting.append(name)
    return fitting
