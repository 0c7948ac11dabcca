"""Checks of recipe options given on the command line, before any work starts.

Hydra passes what it cannot parse as a string: ``seed=abc`` arrives as ``"abc"`` and
``figures=flase`` as ``"flase"`` (which Python would treat as true); ``name=`` arrives as
``""``. Each check raises ``RecipeError`` naming the option, the value and what is allowed:
:func:`check_options` (booleans, integers, thread counts), :func:`check_number` (bounded
numbers), :func:`check_choice`, :func:`check_path`, :func:`check_int_list` and
:func:`check_group`. An option inside a group is named by its dotted path
(``streaming.chunk_frames``), after :func:`check_group` has checked the group itself.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from upsampler.recipe_support.errors import RecipeError


def _get(cfg: Any, name: str) -> Any:
    """``cfg[name]``, a dotted ``name`` looked up group by group; None where it is missing."""
    value = cfg
    for key in name.split("."):
        if not isinstance(value, Mapping) or key not in value:
            return None
        value = value[key]
    return value


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


def check_group(cfg: Any, name: str) -> None:
    """``cfg[name]`` must be a group of options (``key: value``), not ``streaming=abc``."""
    value = _get(cfg, name)
    if not isinstance(value, Mapping):
        raise RecipeError(f"{name} must be a group of options (key: value), got {value!r}")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_real(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def check_number(cfg: Any, name: str, minimum: float | None = None, above: float | None = None,
                 integer: bool = False, nullable: bool = False) -> None:
    """``cfg[name]`` must be a number (a whole one when ``integer``), ``>= minimum`` and
    ``> above`` where given; ``null`` passes only when ``nullable``. NaN and infinities never
    pass."""
    value = _get(cfg, name)
    if value is None and nullable:
        return
    kind = "an integer" if integer else "a number"
    bounds = [f">= {minimum:g}"] if minimum is not None else []
    bounds += [f"> {above:g}"] if above is not None else []
    wanted = kind + (f" {' and '.join(bounds)}" if bounds else "") + (" or null" if nullable else "")
    ok = _is_int(value) if integer else _is_real(value)
    if ok and minimum is not None and value < minimum:
        ok = False
    if ok and above is not None and not value > above:
        ok = False
    if not ok:
        raise RecipeError(f"{name} must be {wanted}, got {value!r}")


def check_choice(cfg: Any, name: str, allowed: Iterable[Any]) -> None:
    """``cfg[name]`` must be one of ``allowed`` (compared with ``==``, type included)."""
    value = _get(cfg, name)
    choices = list(allowed)
    if not any(type(value) is type(choice) and value == choice for choice in choices):
        raise RecipeError(f"{name} must be one of {choices}, got {value!r}")


def check_path(cfg: Any, name: str, nullable: bool = False) -> None:
    """``cfg[name]`` must be a non-empty path string (``null`` too when ``nullable``)."""
    value = _get(cfg, name)
    if value is None and nullable:
        return
    if not isinstance(value, str) or not value.strip():
        also = " or null" if nullable else ""
        raise RecipeError(f"{name} must be a non-empty path{also}, got {value!r}")


def check_int_list(cfg: Any, name: str, minimum: int) -> list[int]:
    """``cfg[name]`` must be a non-empty list of integers ``>= minimum``; return it as a list."""
    value = _get(cfg, name)
    items = list(value) if isinstance(value, Iterable) and not isinstance(value, str) else None
    if not items or not all(_is_int(item) and item >= minimum for item in items):
        shown = items if items is not None else value
        raise RecipeError(f"{name} must be a non-empty list of integers >= {minimum}, "
                          f"got {shown!r}")
    return items


__all__ = ["check_choice", "check_group", "check_int_list", "check_number", "check_options",
           "check_path"]
