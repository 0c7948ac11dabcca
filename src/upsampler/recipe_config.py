"""Glue between the Hydra configs and the models: consistency checks after instantiation.

The recipes call ``load_or_init_generator``, ``check_model_matches_audio`` and
``generator_fields`` on what Hydra composed; nothing here reads a config file itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from torch import nn

from upsampler.models import load_bigvgan, load_hifigan


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
            f"choose an audio config with hop {model_hop} (e.g. audio=22k_hop256 for the "
            f"HiFi-GAN presets) or a model planned from the hop (model=hifigan_any_hop or "
            f"model=debug)"
        )
    model_mels, audio_mels = int(generator.num_mels), int(mel_transform.num_mels)
    if model_mels != audio_mels:
        raise ValueError(
            f"model num_mels={model_mels} does not match audio num_mels={audio_mels}; "
            f"set audio.num_mels={model_mels} or use a checkpoint trained on {audio_mels} mels"
        )


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


def load_or_init_generator(cfg: DictConfig, seed: int | None) -> nn.Module:
    """The recipe's generator: ``cfg.checkpoint`` loaded, or ``cfg.model`` at random init.

    Without a checkpoint, ``torch.manual_seed(seed)`` precedes the construction, so every
    call (and every torchrun rank) with the same seed gets the same untrained weights. A
    checkpoint is read with ``cfg.model_config`` when given, else with the fields of
    ``cfg.model`` (:func:`generator_fields`), by ``load_bigvgan`` when ``cfg.model`` builds a
    ``BigVGANGenerator``, else by ``load_hifigan``. Weight norm is left as built.
    """
    if cfg.checkpoint is None:
        torch.manual_seed(seed)
        return instantiate(cfg.model)
    config = cfg.model_config if cfg.model_config is not None else generator_fields(cfg.model)
    is_bigvgan = str(cfg.model._target_).endswith("BigVGANGenerator")
    return (load_bigvgan if is_bigvgan else load_hifigan)(cfg.checkpoint, config=config)


__all__ = ["check_model_matches_audio", "generator_fields", "load_or_init_generator"]
