"""Bad values for every top-level option of a recipe's composed config, and a tree snapshot.

``battery(cfg)`` lists ``(option, override, value)`` for every option of a composed
``configs/<name>.yaml``, so an option added to the config later is tried too: a value of
the wrong type (``abc`` for numbers and lists, ``[1,2]`` for strings and nulls), ``0``,
``-1`` and an empty value (``option=``). ``value`` is what Hydra makes of ``override``
(``abc`` -> ``"abc"``, ``[1,2]`` -> ``[1, 2]``, ``option=`` -> ``""``), so a test sets it on
one composed config instead of composing once per case. Config groups (mappings such as
``audio`` and ``model``) are left to the builders that check them.
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from omegaconf import DictConfig, OmegaConf


WRONG_TYPE_FOR_NUMBERS = "abc"
WRONG_TYPE_FOR_STRINGS = "[1,2]"


BAD_VALUES: dict[str, object] = {"abc": "abc", "[1,2]": [1, 2], "0": 0, "-1": -1, "": ""}


def options_of(cfg: DictConfig) -> dict[str, object]:
    """Top-level options of a composed config (groups and ``hydra`` left out), unresolved."""
    raw = OmegaConf.to_container(cfg, resolve=False)
    return {key: value for key, value in raw.items()
            if key != "hydra" and not isinstance(value, Mapping)}


def battery(cfg: DictConfig) -> list[tuple[str, str, object]]:
    """``(option, override, value)`` for every option: wrong type, 0, -1 and empty."""
    cases = []
    for option, value in options_of(cfg).items():
        numeric = isinstance(value, (int, float, list)) and not isinstance(value, bool)
        wrong = WRONG_TYPE_FOR_NUMBERS if numeric else WRONG_TYPE_FOR_STRINGS
        cases += [(option, f"{option}={bad}", BAD_VALUES[bad]) for bad in (wrong, "0", "-1", "")]
    return cases


def nested_options(cfg: DictConfig, groups: tuple[str, ...] = ()) -> dict[str, object]:
    """Every option of a composed config by dotted path, unresolved: the values inside nested
    groups (``table.enabled``, ``timing.min_reps``) and the nested groups themselves, not
    the top-level ``groups`` (``audio=...`` picks a config group; their fields are in), not
    ``hydra`` and not ``_``-keys (``_target_``). Lists of mappings are one option."""
    found: dict[str, object] = {}

    def visit(node: Mapping, prefix: str) -> None:
        for key, value in node.items():
            key = str(key)
            if key.startswith("_") or (not prefix and key == "hydra"):
                continue
            path = f"{prefix}{key}"
            if not (not prefix and key in groups):
                found[path] = value
            if isinstance(value, Mapping):
                visit(value, f"{path}.")

    visit(OmegaConf.to_container(cfg, resolve=False), "")
    return found


def nested_battery(cfg: DictConfig, groups: tuple[str, ...] = ()) -> list[tuple[str, str, object]]:
    """``(option, override, value)`` for every option of :func:`nested_options`: a wrong
    type (``abc`` for numbers, lists and groups, ``[1,2]`` for strings and nulls), ``0``,
    ``-1`` and empty."""
    cases = []
    for option, value in nested_options(cfg, groups).items():
        numeric = isinstance(value, (int, float, list, Mapping)) and not isinstance(value, bool)
        wrong = WRONG_TYPE_FOR_NUMBERS if numeric else WRONG_TYPE_FOR_STRINGS
        cases += [(option, f"{option}={bad}", BAD_VALUES[bad]) for bad in (wrong, "0", "-1", "")]
    return cases


def with_value(cfg: DictConfig, option: str, value: object) -> DictConfig:
    """A copy of ``cfg`` with ``option`` (a dotted path for a nested one) set to ``value``."""
    changed = copy.deepcopy(cfg)
    if "." in option:
        OmegaConf.update(changed, option, value, merge=False)
    else:
        changed[option] = value
    return changed


def tree_state(root: Path) -> dict[str, str]:
    """Every path under ``root`` (folders too) -> SHA-256 of its bytes ("dir" for folders)."""
    state = {}
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root).as_posix()
        state[relative] = "dir" if path.is_dir() else hashlib.sha256(path.read_bytes()).hexdigest()
    return state


@contextmanager
def value_set(cfg: DictConfig, option: str, value: object) -> Iterator[DictConfig]:
    """``cfg`` itself with ``option`` (dotted) set to ``value`` for the block, then put back
    as it was (interpolations too): :func:`with_value` without a copy, for batteries of
    hundreds of cases."""
    *parents, last = option.split(".")
    parent = cfg
    for key in parents:
        parent = parent[key]
    before = OmegaConf.to_container(parent, resolve=False)[last]
    parent[last] = value
    try:
        yield cfg
    finally:
        parent[last] = before
