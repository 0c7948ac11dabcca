"""The audio front end a recipe that takes ``checkpoint=`` runs with: the checkpoint's.

:func:`checkpoint_front_end` resolves the checkpoint (:func:`~.build.resolve_checkpoint`)
and, when its ``config.json`` names the front end, refuses every ``audio`` value the user
gave on the command line that contradicts it (:func:`audio_overrides` reads which fields
the overrides set, :func:`check_audio_overrides` names each clash with both values), then
logs one line naming the checkpoint and the front end. Train's ``init_generator`` checks
its overrides with the same functions.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from typing import Any, Optional

from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig, OmegaConf

from upsampler.audio import HIFIGAN_AUDIO_FIELDS
from upsampler.recipe_support.build import config_front_end, resolve_checkpoint

log = logging.getLogger(__name__)

AUDIO_GROUP = "audio"
CONFIG_FIELD_NAMES = {name: field for field, name in HIFIGAN_AUDIO_FIELDS.items()}


def given_overrides() -> list[str]:
    """The running Hydra app's command-line overrides; [] outside one (compose API, tests)."""
    if not HydraConfig.initialized():
        return []
    return list(HydraConfig.get().overrides.task)


def audio_overrides(overrides: Sequence[str], audio: DictConfig) -> dict[str, tuple[str, Any]]:
    """Front-end field -> (the override that gave it, the value ``audio`` was composed with).

    ``audio=<preset>`` gives every field of the preset; ``audio.<field>=...`` (also with
    ``+``, ``++`` or ``~``) gives that field; a later override of a field wins.
    """
    given: dict[str, tuple[str, Any]] = {}
    for override in OverridesParser.create().parse_overrides(list(overrides)):
        key, line = override.key_or_group, override.input_line
        if override.package is not None:
            continue  # audio@other=...: another package, not the front end
        if key == AUDIO_GROUP:
            fields = [str(field) for field in audio if not str(field).startswith("_")]
        elif key.startswith(AUDIO_GROUP + "."):
            fields = [key.split(".")[1]]
        else:
            continue
        for field in fields:
            given[field] = (line, audio.get(field))
    return given


def same_value(given: Any, expected: Any) -> bool:
    """Equal as config values: numbers by value (16000 == 16000.0), lists and tuples alike."""
    numbers = all(isinstance(value, (int, float)) and not isinstance(value, bool)
                  for value in (given, expected))
    if numbers:
        return float(given) == float(expected)
    plain = [OmegaConf.to_container(value) if OmegaConf.is_config(value) else value
             for value in (given, expected)]
    return json.loads(json.dumps(plain[0])) == json.loads(json.dumps(plain[1]))


def check_audio_overrides(given: dict[str, tuple[str, Any]], fields: Mapping[str, Any],
                          source: str) -> None:
    """``ValueError`` naming each given front-end value that differs from the checkpoint's."""
    clashes: dict[str, list[str]] = {}
    expected = []
    for field, (line, value) in given.items():
        if field in fields and same_value(value, fields[field]):
            continue
        name = CONFIG_FIELD_NAMES.get(field, field)
        clashes.setdefault(line, []).append(f"{field}={value}")
        expected.append(f"{name} {fields[field]}" if field in fields else f"no {name}")
    if not clashes:
        return
    stated = "; ".join(line if line.lstrip("+~").partition("=")[0] != AUDIO_GROUP
                       else f"{line} ({', '.join(values)})" for line, values in clashes.items())
    raise ValueError(f"{stated} contradicts the checkpoint's config.json ({', '.join(expected)}): "
                     f"drop the override or pass another checkpoint ({source})")


def checkpoint_front_end(cfg: DictConfig,
                         overrides: Optional[Sequence[str]] = None) -> DictConfig:
    """``cfg`` resolved (:func:`resolve_checkpoint`), ``audio`` the checkpoint's front end.

    When the checkpoint's ``config.json`` names the front end, every ``audio`` field the
    user gave (``overrides``; default: the running Hydra app's, :func:`given_overrides`)
    must agree with it, else ``ValueError`` naming both values. Without a checkpoint or
    without such a ``config.json``, ``cfg.audio`` stays. One log line names the checkpoint
    and the front end the recipe will use.
    """
    requested = cfg.checkpoint
    resolved = resolve_checkpoint(cfg)
    fields = None if resolved.checkpoint is None else config_front_end(resolved.model_config)
    if fields is not None:
        given = audio_overrides(given_overrides() if overrides is None else overrides, cfg.audio)
        check_audio_overrides(given, fields, f"checkpoint={requested} reads "
                                             f"{resolved.model_config}")
    log.info("%s: front end %s (from %s)", checkpoint_label(requested, resolved.checkpoint),
             front_end_summary(resolved.audio),
             "the audio config" if fields is None else resolved.model_config)
    return resolved


def checkpoint_label(requested: Any, path: Optional[str]) -> str:
    """``checkpoint demo (/path/generator.pt)``, ``checkpoint g_1`` or the untrained model."""
    if path is None:
        return "checkpoint none (untrained model group)"
    return f"checkpoint {path}" if str(requested) == path else f"checkpoint {requested} ({path})"


def front_end_summary(audio: DictConfig | Mapping[str, Any]) -> str:
    """``16000 Hz, hop 200, n_fft 1024, 80 mels, fmax 8000.0``: what decides a mel."""
    return (f"{audio['sample_rate']} Hz, hop {audio['hop_length']}, n_fft {audio['n_fft']}, "
            f"{audio['num_mels']} mels, fmax {audio['fmax']}")


__all__ = ["audio_overrides", "check_audio_overrides", "checkpoint_front_end",
           "given_overrides", "same_value"]
