"""Checks of recipe options given on the command line, before any work starts.

Hydra passes what it cannot parse as a string: ``seed=abc`` arrives as ``"abc"`` and
``figures=flase`` as ``"flase"`` (which Python would treat as true). Each check raises
``RecipeError`` naming the option, the value and what is allowed.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from upsampler.recipe_support.errors import RecipeError


def _get(cfg: Any, name: str) -> Any:
    return cfg[name] if name in cfg else None


def check_options(
    cfg: Any,
    booleans: Iterable[str] = (),
    integers: Iterable[str] = (),
    positive_or_null: Iterable[str] = (),
) -> None:
    """``booleans`` must be ``true``/``false``, ``integers`` whole numbers, and
    ``positive_or_null`` (thread counts) ``null`` or at least 1."""
    for name in booleans:
        value = _get(cfg, name)
        if not isinstance(value, bool):
            raise RecipeError(f"{name} must be true or false, got {value!r}")
    for name in integers:
        value = _get(cfg, name)
        if isinstance(value, bool) or not isinstance(value, int):
            raise RecipeError(f"{name} must be an integer, got {value!r}")
    for name in positive_or_null:
        value = _get(cfg, name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise RecipeError(f"{name} must be a positive integer or null, got {value!r}")


__all__ = ["check_options"]
