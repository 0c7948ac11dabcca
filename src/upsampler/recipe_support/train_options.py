"""The checks of every ``recipes/train.py`` option, run before any work starts.

Hydra passes what it cannot parse as a string (``max_steps=abc`` arrives as ``"abc"``,
``resume=flase`` as ``"flase"``, which Python would read as true), and numbers arrive
unchecked (``data.batch_size=0``). :func:`check_train_options` walks the composed config
(``configs/train.yaml`` and its groups: audio, upsampler, model, discriminator, optimiser,
data) and raises one ``RecipeError`` line naming the first bad option, its value and what
is allowed. :data:`RULES` (by dotted path) and :data:`MODEL_RULES` (by field name, for any
``model=``) say what each option allows; a ``_target_`` spec (planned upsample rates) and
keys starting with ``_`` are left to Hydra.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from omegaconf import DictConfig, OmegaConf

from upsampler.layers.upsamplers import UPSAMPLERS
from upsampler.recipe_support.errors import RecipeError, one_line

SNAKES = ("snake", "snakebeta")
RESBLOCKS = ("1", "2")
SHORT_FILES = ("pad", "skip")


@dataclass(frozen=True)
class Rule:
    """What one option allows: ``allowed`` in words, ``accepts(value)`` as a test."""

    allowed: str
    accepts: Callable[[Any], bool]


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value))


def _or_null(rule: Rule) -> Rule:
    return Rule(f"{rule.allowed} or null", lambda v: v is None or rule.accepts(v))


BOOLEAN = Rule("true or false", lambda v: isinstance(v, bool))
POSITIVE_INT = Rule("a positive integer", lambda v: _is_int(v) and v >= 1)
NON_NEGATIVE_INT = Rule("an integer >= 0", lambda v: _is_int(v) and v >= 0)
POSITIVE_NUMBER = Rule("a positive number", lambda v: _is_number(v) and v > 0)
NON_NEGATIVE_NUMBER = Rule("a number >= 0", lambda v: _is_number(v) and v >= 0)
TEXT = Rule("a non-empty string", lambda v: isinstance(v, str) and v != "")
POSITIVE_INTS = Rule("a non-empty list of positive integers",
                     lambda v: isinstance(v, list) and len(v) > 0
                     and all(POSITIVE_INT.accepts(x) for x in v))
NESTED_POSITIVE_INTS = Rule("a non-empty list of non-empty lists of positive integers",
                            lambda v: isinstance(v, list) and len(v) > 0
                            and all(POSITIVE_INTS.accepts(x) for x in v))
STRINGS = Rule("a list of strings (may be empty)",
               lambda v: isinstance(v, list) and all(TEXT.accepts(x) for x in v))
BETAS = Rule("two numbers in [0, 1)", lambda v: isinstance(v, list) and len(v) == 2
             and all(_is_number(x) and 0 <= x < 1 for x in v))
DECAY = Rule("a number in (0, 1]", lambda v: _is_number(v) and 0 < v <= 1)


def choice(*values: str) -> Rule:
    """One of ``values`` (strings)."""
    return Rule(f"one of {list(values)}", lambda v: isinstance(v, str) and v in values)


RULES: dict[str, Rule] = {
    "max_steps": _or_null(POSITIVE_INT),
    "max_minutes": _or_null(POSITIVE_NUMBER),
    "warmup_steps": NON_NEGATIVE_INT,
    "warmup_minutes": _or_null(NON_NEGATIVE_NUMBER),
    "loss.mel_weight": NON_NEGATIVE_NUMBER,
    "loss.stft_weight": NON_NEGATIVE_NUMBER,
    "loss.adversarial_weight": NON_NEGATIVE_NUMBER,
    "log_every": POSITIVE_INT,
    "checkpoint_every": POSITIVE_INT,
    "keep_checkpoints": _or_null(POSITIVE_INT),
    "validation_every": _or_null(POSITIVE_INT),
    "validate_at_start": BOOLEAN,
    "resume": BOOLEAN,
    "adopt": BOOLEAN,
    "resume_changes": STRINGS,
    "init_generator": _or_null(TEXT),
    "init_generator_config": _or_null(TEXT),
    "seed": NON_NEGATIVE_INT,
    "deterministic": BOOLEAN,
    "device": TEXT,
    "num_threads": _or_null(POSITIVE_INT),
    "tensorboard": BOOLEAN,
    "progress": BOOLEAN,
    "output_dir": TEXT,
    "audio.sample_rate": POSITIVE_INT,
    "audio.n_fft": POSITIVE_INT,
    "audio.hop_length": POSITIVE_INT,
    "audio.win_length": POSITIVE_INT,
    "audio.num_mels": POSITIVE_INT,
    "audio.fmin": NON_NEGATIVE_NUMBER,
    "audio.fmax": _or_null(POSITIVE_NUMBER),
    "upsampler.kind": choice(*UPSAMPLERS),
    "discriminator.periods": POSITIVE_INTS,
    "discriminator.period_channels": POSITIVE_INTS,
    "discriminator.scale_channels": POSITIVE_INTS,
    "discriminator.scale_groups": POSITIVE_INTS,
    "optimiser.learning_rate": POSITIVE_NUMBER,
    "optimiser.betas": BETAS,
    "optimiser.weight_decay": NON_NEGATIVE_NUMBER,
    "optimiser.lr_decay": DECAY,
    "data.wav_dir": _or_null(TEXT),
    "data.train_list": _or_null(TEXT),
    "data.validation_list": _or_null(TEXT),
    "data.segment_length": POSITIVE_INT,
    "data.batch_size": POSITIVE_INT,
    "data.num_workers": NON_NEGATIVE_INT,
    "data.short_files": choice(*SHORT_FILES),
    "data.validation_utterances": _or_null(POSITIVE_INT),
}
# generator fields, whichever model= config names them
MODEL_RULES: dict[str, Rule] = {
    "num_mels": POSITIVE_INT,
    "upsample_rates": POSITIVE_INTS,
    "upsample_kernel_sizes": POSITIVE_INTS,
    "upsample_initial_channel": POSITIVE_INT,
    "resblock": choice(*RESBLOCKS),
    "resblock_kernel_sizes": POSITIVE_INTS,
    "resblock_dilation_sizes": NESTED_POSITIVE_INTS,
    "activation": choice(*SNAKES),
    "snake_logscale": BOOLEAN,
    "use_tanh_at_final": BOOLEAN,
    "use_bias_at_final": BOOLEAN,
    "anti_alias": BOOLEAN,
    "upsampler": choice(*UPSAMPLERS),
}


def rule_for(path: str) -> Rule | None:
    """The rule of the option at dotted ``path`` (None: not one the recipe checks)."""
    group, _, field = path.partition(".")
    if group == "model" and field and "." not in field:
        return MODEL_RULES.get(field)
    return RULES.get(path)


def is_spec(value: Any) -> bool:
    """A ``_target_`` node (Hydra instantiates it; ``plan_upsample_rates``, say)."""
    return isinstance(value, Mapping) and "_target_" in value


def options(node: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    """``(dotted path, value)`` of every option under ``node``: scalars and lists, not the
    ``_``-keys, not ``hydra``, not inside a ``_target_`` spec below the top of a group."""
    for key, value in node.items():
        key = str(key)
        if key.startswith("_") or (not prefix and key == "hydra"):
            continue
        path = f"{prefix}{key}"
        if isinstance(value, Mapping):
            if not is_spec(value) or not prefix:
                yield from options(value, f"{path}.")
            continue
        yield path, value


def check_train_options(cfg: DictConfig) -> None:
    """Raise one ``RecipeError`` line for the first option ``cfg`` sets to a value its rule
    does not allow (or whose interpolation does not resolve); options without a rule pass."""
    try:
        resolved = OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)
    except Exception as error:  # an interpolation naming a missing key, say
        raise RecipeError(f"the train config does not resolve: {one_line(error)}") from error
    for path, value in options(resolved):
        rule = rule_for(path)
        if rule is not None and not rule.accepts(value):
            raise RecipeError(f"{path} must be {rule.allowed}, got {value!r}")


__all__ = ["MODEL_RULES", "RULES", "Rule", "check_train_options", "options", "rule_for"]
