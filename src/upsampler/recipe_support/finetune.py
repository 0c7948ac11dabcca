"""Fine-tuning: ``recipes/train.py init_generator=<pretrained name or g_ file>``.

``resolve_init_generator`` finds the weight file and its ``config.json`` (a pretrained name:
its registered files; a path: ``init_generator_config`` or the ``config.json`` beside it).
``apply_init_generator`` returns a copy of the train config whose ``model`` is a
``HiFiGANGenerator`` with the checkpoint's fields and whose ``audio`` is the checkpoint's
front end; a command-line override of ``audio``, ``model`` or ``upsampler`` that disagrees
with the checkpoint is a ``RecipeError`` naming both values. ``load_init_generator`` copies
the weights into the built generator (``resume_or_start`` calls it for a run at step 0, so
the discriminators, optimisers and step count start fresh).
"""

from __future__ import annotations

import copy
import json
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from omegaconf import DictConfig, open_dict
from torch import nn

from upsampler.audio import mel_kwargs_from_config
from upsampler.models.checkpoint import (
    branches_per_stage,
    flat_state_dict,
    generator_kwargs,
    key_problems,
    nested_key,
    normalise_keys,
    read_state_dict,
)
from upsampler.models.pretrained import PRETRAINED, MissingExtraError, pretrained_files
from upsampler.recipe_support.build import MEL_TARGET, generator_fields
from upsampler.recipe_support.front_end import (
    audio_overrides,
    check_audio_overrides,
    same_value,
)
from upsampler.recipe_support.errors import RecipeError, one_line
from upsampler.training.checkpoints import unwrap

log = logging.getLogger("train")

CONFIG_NAME = "config.json"  # HiFi-GAN's release layout: g_XXXXXXXX beside config.json
GENERATOR_TARGET = "upsampler.HiFiGANGenerator"
DEFAULT_UPSAMPLER = "transposed"  # jik876's configs name none: the original ConvTranspose1d
# the stage fields a HiFi-GAN generator config.json must name
REQUIRED_FIELDS = ("upsample_rates", "upsample_kernel_sizes", "upsample_initial_channel",
                   "resblock", "resblock_kernel_sizes", "resblock_dilation_sizes")
OVERRIDE_PREFIX_CHARS = "+~"  # Hydra's append / force-add / delete markers before a key


@dataclass(frozen=True)
class InitGenerator:
    """A resolved ``init_generator``: the weight file, its ``config.json`` and that JSON."""

    label: str  # what the user wrote: a pretrained name or a path
    checkpoint: Path
    config_path: Path
    config: dict[str, Any]


def resolve_init_generator(name: str, config_path: Optional[str] = None) -> InitGenerator:
    """The weight file and ``config.json`` that ``init_generator=name`` means.

    A pretrained name (``PRETRAINED``) gives its verified files; anything else must be an
    existing file, read with ``config_path`` or else the ``config.json`` beside it. Every
    problem (unknown name, missing file, missing or unreadable config) is a one-line
    ``RecipeError`` naming the option and its value.
    """
    name = str(name)
    if name in PRETRAINED:
        if config_path is not None:
            raise RecipeError(f"init_generator_config={config_path!r} is only for a checkpoint "
                              f"path; the pretrained {name!r} brings its own config.json "
                              f"(set init_generator_config=null)")
        try:
            checkpoint, config_file = pretrained_files(name)
        except (MissingExtraError, ValueError) as error:
            raise RecipeError(f"init_generator={name}: {one_line(error)}") from error
        model = PRETRAINED[name]
        log.info("init_generator %s: %s (%s; %s)", name, model.summary, model.licence,
                 model.attribution)
    else:
        checkpoint = Path(name).expanduser()
        if not checkpoint.is_file():
            looks_like_path = os.sep in name or "/" in name or checkpoint.suffix != ""
            what = (f"file {str(checkpoint)!r} does not exist" if looks_like_path
                    else "is not a pretrained name and no such file exists")
            raise RecipeError(f"init_generator={name!r}: {what}; give a g_XXXXXXXX file in "
                              f"HiFi-GAN's format or one of the pretrained names "
                              f"{list(PRETRAINED)}")
        config_file = (Path(config_path).expanduser() if config_path is not None
                       else checkpoint.parent / CONFIG_NAME)
        if not config_file.is_file():
            option = ("init_generator_config" if config_path is not None
                      else f"init_generator={name!r}: the {CONFIG_NAME} beside it,")
            raise RecipeError(f"{option} {str(config_file)!r} does not exist; pass "
                              f"init_generator_config=<the checkpoint's config.json>")
    try:
        config = json.loads(config_file.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise RecipeError(f"init_generator config {str(config_file)!r} is not readable JSON: "
                          f"{one_line(error)}") from error
    if not isinstance(config, dict):
        raise RecipeError(f"init_generator config {str(config_file)!r} holds "
                          f"{type(config).__name__}, not a HiFi-GAN config.json object")
    return InitGenerator(name, checkpoint, config_file, config)


def checkpoint_model(init: InitGenerator) -> dict[str, Any]:
    """The ``HiFiGANGenerator`` fields the checkpoint's config names, as a model config.

    ``upsampler`` falls back to "transposed" (jik876's configs name none: the original
    ``ConvTranspose1d``); a config lacking a stage field or ``num_mels`` is a ``RecipeError``.
    """
    fields = generator_kwargs(init.config)
    missing = [field for field in (*REQUIRED_FIELDS, "num_mels") if field not in fields]
    if missing:
        raise RecipeError(f"init_generator config {str(init.config_path)!r} lacks {missing}; "
                          f"it is not a HiFi-GAN generator config.json")
    fields.setdefault("upsampler", DEFAULT_UPSAMPLER)
    return json.loads(json.dumps(fields))  # tuples -> lists: comparable with composed values


def overridden(overrides: Sequence[str], groups: Sequence[str]) -> Optional[set[str]]:
    """Which fields of ``groups`` the command line sets: ``{"*"}`` for a whole group
    (``audio=16k_hop200``), ``{"fmax"}`` for ``audio.fmax=...``, None when untouched."""
    fields: set[str] = set()
    for override in overrides:
        key = override.partition("=")[0].lstrip(OVERRIDE_PREFIX_CHARS)
        group, _, field = key.partition(".")
        if group.partition("@")[0] in groups:
            fields.add(field.partition(".")[0] if field else "*")
    return fields or None


def contradictions(composed: Mapping[str, Any], wanted: Mapping[str, Any],
                   touched: Optional[set[str]]) -> list[tuple[str, Any, Any]]:
    """``(field, composed value, checkpoint value)`` for every field the command line set
    (``touched``; ``"*"``: all) to something other than the checkpoint's."""
    if touched is None:
        return []
    return [(field, composed.get(field), value) for field, value in wanted.items()
            if ("*" in touched or field in touched) and field in composed
            and not same_value(composed[field], value)]


def apply_init_generator(cfg: DictConfig, overrides: Sequence[str] = ()) -> DictConfig:
    """A copy of ``cfg`` set up to fine-tune from ``cfg.init_generator`` (``cfg`` itself when
    that is null).

    ``model`` becomes a ``HiFiGANGenerator`` with the checkpoint's fields and ``audio`` the
    checkpoint's front end (both logged where they change the composed values);
    ``init_generator`` / ``init_generator_config`` become the resolved absolute file paths.
    ``overrides`` are the command line's (Hydra's task overrides): one that sets an audio or
    model field to a value other than the checkpoint's is a ``RecipeError`` naming both.
    """
    name = cfg.get("init_generator")
    if name is None:
        return cfg
    init = resolve_init_generator(name, cfg.get("init_generator_config"))
    model = checkpoint_model(init)
    try:
        audio = mel_kwargs_from_config(init.config)
    except ValueError as error:
        raise RecipeError(f"init_generator config {str(init.config_path)!r}: "
                          f"{one_line(error)}") from error
    cfg = copy.deepcopy(cfg)  # a shallow copy's nodes would still resolve against the original
    source = f"init_generator={init.label}"
    with open_dict(cfg):
        if audio is None:
            log.warning("%s: %s names no audio front end; keeping the composed audio config",
                        source, init.config_path)
        else:
            composed_audio = {key: value for key, value in cfg.audio.items() if key != "_target_"}
            try:
                check_audio_overrides(audio_overrides(overrides, cfg.audio), audio,
                                      f"{source} reads {init.config_path}")
            except ValueError as error:
                raise RecipeError(str(error)) from error
            changed = {k: (composed_audio.get(k), v) for k, v in audio.items()
                       if not same_value(composed_audio.get(k), v)}
            cfg.audio = {"_target_": MEL_TARGET, **audio}
            if changed:
                log.info("%s: audio front end from %s: %s", source, init.config_path,
                         ", ".join(f"{k}={v} (composed {old})" for k, (old, v) in changed.items()))
        whole_model = overridden(overrides, ["model"]) or set()
        touched = whole_model | ({"upsampler"} if overridden(overrides, ["upsampler"]) else set())
        if touched:
            target = str(cfg.model.get("_target_", ""))
            if "*" in whole_model and not target.endswith("HiFiGANGenerator"):
                raise RecipeError(f"{source} fine-tunes a HiFiGANGenerator, but the command "
                                  f"line's model builds {target}; drop the model override")
            try:
                composed_model = generator_fields(cfg.model)  # planned from the new audio
            except Exception as error:
                raise RecipeError(f"model config: {one_line(error)}") from error
            clash = contradictions(composed_model, model, touched)
            if clash:
                field, given, wanted = clash[0]
                raise RecipeError(
                    f"{source} has {field}={wanted} ({init.config_path}), but the command line's "
                    f"model has {field}={given}; drop the model override (fine-tuning keeps "
                    f"the checkpoint's architecture)")
        cfg.model = {"_target_": GENERATOR_TARGET, "_convert_": "all", **model}
        # absolute: the run's config.json records them, and a resume may start elsewhere
        cfg.init_generator = str(init.checkpoint.resolve())
        cfg.init_generator_config = str(init.config_path.resolve())
    log.info("%s: generator fields from %s: %s", source, init.config_path,
             ", ".join(f"{k}={v}" for k, v in model.items()))
    return cfg


def load_init_generator(generator: nn.Module, checkpoint: str | Path,
                        config_path: str | Path | None = None) -> None:
    """Copy the weights of ``checkpoint`` (a ``g_*`` file or a bare state_dict) into
    ``generator``.

    A damaged file, or one of another architecture than the generator its config.json
    (``config_path``) built, is a one-line ``RecipeError`` naming the file.
    """
    model = unwrap(generator)
    try:
        state = read_state_dict(checkpoint)
    except ValueError as error:
        raise RecipeError(f"init_generator: {one_line(error)}") from error
    num_kernels = branches_per_stage(model)
    expected = flat_state_dict(model)
    renamed, origin = normalise_keys(state, expected, num_kernels)
    problems = key_problems(renamed, origin, expected)
    if problems:
        described = f" that {config_path} describes" if config_path is not None else ""
        raise RecipeError(
            f"init_generator {str(checkpoint)!r} holds another generator architecture than "
            f"the {type(model).__name__}{described} ({len(problems)} key problems, first: "
            f"{problems[0]}); init_generator takes HiFi-GAN generators: pass the config.json "
            f"this one was trained with as init_generator_config")
    model.load_state_dict({nested_key(k, num_kernels): v for k, v in renamed.items()},
                          strict=True)


__all__ = [
    "InitGenerator", "apply_init_generator", "checkpoint_model",
    "contradictions", "load_init_generator", "overridden", "resolve_init_generator",
]
