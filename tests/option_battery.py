"""Bad values for every top-level option of a recipe's composed config, and a tree snapshot.

``battery(name, base)`` lists ``(option, override)`` pairs from ``configs/<name>.yaml``
itself, so an option added to the config later is tried too: a value of the wrong type
(``abc`` for numbers and lists, ``[1,2]`` for strings and nulls), ``0``, ``-1`` and an
empty value (``option=``, which Hydra passes as ``""``). Config groups (mappings such as
``audio`` and ``model``) are left to the builders that check them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from pathlib import Path

from omegaconf import OmegaConf

from recipe_support import compose_config

WRONG_TYPE_FOR_NUMBERS = "abc"
WRONG_TYPE_FOR_STRINGS = "[1,2]"


def options_of(name: str, base: Sequence[str] = ()) -> dict[str, object]:
    """Top-level options of ``configs/<name>.yaml`` (groups left out), unresolved."""
    raw = OmegaConf.to_container(compose_config(name, list(base)), resolve=False)
    return {key: value for key, value in raw.items()
            if key != "hydra" and not isinstance(value, Mapping)}


def battery(name: str, base: Sequence[str] = ()) -> list[tuple[str, str]]:
    """``(option, override)`` for every option: wrong type, 0, -1 and empty."""
    cases = []
    for option, value in options_of(name, base).items():
        numeric = isinstance(value, (int, float, list)) and not isinstance(value, bool)
        wrong = WRONG_TYPE_FOR_NUMBERS if numeric else WRONG_TYPE_FOR_STRINGS
        cases += [(option, f"{option}={bad}") for bad in (wrong, "0", "-1", "")]
    return cases


def with_override(base: Sequence[str], override: str) -> list[str]:
    """``base`` without its own value for the overridden option, plus ``override``."""
    option = override.split("=", 1)[0]
    return [item for item in base if item.split("=", 1)[0] != option] + [override]


def tree_state(root: Path) -> dict[str, str]:
    """Every path under ``root`` (folders too) -> SHA-256 of its bytes ("dir" for folders)."""
    state = {}
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root).as_posix()
        state[relative] = "dir" if path.is_dir() else hashlib.sha256(path.read_bytes()).hexdigest()
    return state
