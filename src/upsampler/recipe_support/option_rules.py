"""The words recipe rule tables are written in, and the walk that checks a config by a table.

A rule table maps dotted option paths to :class:`~upsampler.recipe_support.train_options.Rule`
objects; ``*`` stands for any one key or list index (``extra_layers.*.stride``), and a
``model`` group gets train's ``MODEL_RULES``. :func:`check_rules` walks the resolved config
(nested groups such as ``table.*`` and benchmark's sections too, and the entries of lists
of mappings such as ``extra_layers``) and raises one ``RecipeError`` line for the first
option whose value its rule does not allow, naming the option, the value and what is
allowed. The rules here add to train's (``BOOLEAN``, ``POSITIVE_INT``, ...): groups, paths,
devices, lists of names and lists of mappings, which the walk visits entry by entry.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator, Mapping
from typing import Any

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import MissingMandatoryValue

from upsampler.recipe_support.errors import RecipeError, one_line
from upsampler.recipe_support.train_options import (
    MODEL_RULES,
    NON_NEGATIVE_INT,
    POSITIVE_INT,
    POSITIVE_NUMBER,
    TEXT,
    Rule,
    _is_number,
    is_spec,
    _or_null,
)

MAPPING = Rule("a group of options (key: value)", lambda v: isinstance(v, Mapping))
NON_EMPTY_MAPPING = Rule("a non-empty group of options (key: value)",
                         lambda v: isinstance(v, Mapping) and len(v) > 0)
ANY_TEXT = Rule("a string", lambda v: isinstance(v, str))
PATH_OR_NULL = _or_null(Rule("a non-empty path", lambda v: isinstance(v, str) and v.strip() != ""))
PATH = Rule("a non-empty path", lambda v: isinstance(v, str) and v.strip() != "")
THREADS_OR_NULL = _or_null(POSITIVE_INT)
SEED = NON_NEGATIVE_INT
SEEDS = Rule("a non-empty list of integers >= 0",
             lambda v: isinstance(v, list) and len(v) > 0 and all(SEED.accepts(x) for x in v))
TEXTS = Rule("a non-empty list of non-empty strings",
             lambda v: isinstance(v, list) and len(v) > 0 and all(TEXT.accepts(x) for x in v))
POSITIVE_NUMBERS = Rule("a non-empty list of positive numbers",
                        lambda v: isinstance(v, list) and len(v) > 0
                        and all(POSITIVE_NUMBER.accepts(x) for x in v))
NON_ZERO_NUMBERS = Rule("a non-empty list of non-zero numbers",
                        lambda v: isinstance(v, list) and len(v) > 0
                        and all(_is_number(x) and x != 0 for x in v))


DEVICE_PATTERN = re.compile(r"cpu|cuda(:\d+)?")  # what the recipes' process set-up runs on
DEVICE = Rule("'cpu', 'cuda' or 'cuda:N'",
              lambda v: isinstance(v, str) and DEVICE_PATTERN.fullmatch(v) is not None)


SOME_POSITIVE_INTS = Rule("a list of positive integers (may be empty)",
                         lambda v: isinstance(v, list) and all(POSITIVE_INT.accepts(x) for x in v))


def names_among(names: Any, non_empty: bool = True) -> Rule:
    """A list of names among ``names`` (non-empty unless ``non_empty`` is false)."""
    allowed = sorted(names)
    words = "a non-empty list" if non_empty else "a list (may be empty)"
    return Rule(f"{words} of names among {allowed}",
                lambda v: isinstance(v, list) and (len(v) > 0 or not non_empty)
                and all(isinstance(x, str) and x in allowed for x in v))


def one_of(names: Any) -> Rule:
    allowed = sorted(names)
    return Rule(f"one of {allowed}", lambda v: isinstance(v, str) and v in allowed)


def mappings_with(keys: tuple[str, ...], non_empty: bool = True) -> Rule:
    """A list of mappings holding exactly ``keys`` (each value has its own ``*`` rule)."""
    words = "a non-empty list" if non_empty else "a list (may be empty)"
    return Rule(f"{words} of {{{', '.join(keys)}}}",
                lambda v: isinstance(v, list) and (len(v) > 0 or not non_empty)
                and all(isinstance(x, Mapping) and set(x) == set(keys) for x in v))


# -- the walk ---------------------------------------------------------------------------------

@functools.lru_cache(maxsize=None)
def _pattern(path: str) -> re.Pattern[str]:
    return re.compile("\\.".join("[^.]+" if part == "*" else re.escape(part)
                                 for part in path.split(".")) + "$")


def rule_for(rules: Mapping[str, Rule], path: str) -> Rule | None:
    """The rule of dotted ``path`` (exact key first, then a ``*`` key; ``model.<field>``:
    MODEL_RULES when ``rules`` checks a model group); None: the recipe does not check it."""
    if path in rules:
        return rules[path]
    for key, rule in rules.items():
        if "*" in key and _pattern(key).match(path):
            return rule
    group, _, field = path.partition(".")
    if group == "model" and "model" in rules and field and "." not in field:
        return MODEL_RULES.get(field)
    return None


def walk(node: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """``(dotted path, value)`` of every option under ``node``, groups included (before what
    they hold); list entries that are mappings are walked as ``path.<index>``. Keys starting
    with ``_`` (Hydra's ``_target_``), ``_target_`` specs inside a group (a model's planned
    ``upsample_rates``: its function checks them) and the top-level ``hydra`` are left out."""
    for key, value in node.items():
        key = str(key)
        if key.startswith("_") or (not prefix and key == "hydra"):
            continue
        path = f"{prefix}{key}"
        if prefix and is_spec(value):  # instantiated by Hydra (plan_upsample_rates): its own
            continue
        yield path, value
        if isinstance(value, Mapping):
            yield from walk(value, f"{path}.")
        elif isinstance(value, list):
            for index, item in enumerate(value):
                if isinstance(item, Mapping):
                    yield from walk(item, f"{path}.{index}.")


def resolve(cfg: DictConfig, recipe: str) -> dict[str, Any]:
    """``cfg`` as plain containers, interpolations resolved; one line when one does not."""
    try:
        return OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)
    except MissingMandatoryValue as error:
        key = getattr(error, "full_key", None) or "an option"
        raise RecipeError(f"{key} must be given ({recipe} has no default for it)") from error
    except Exception as error:  # an interpolation naming a missing key, say
        raise RecipeError(f"the {recipe} config does not resolve: {one_line(error)}") from error


def check_rules(values: Mapping[str, Any], rules: Mapping[str, Rule],
                quick_prefix: str | None = None) -> None:
    """Raise one ``RecipeError`` line for the first option of ``values`` its rule refuses.

    Under ``quick_prefix`` an option takes the rule of the option it replaces.
    """
    for path, value in walk(values):
        lookup = path
        if quick_prefix and path.startswith(quick_prefix):
            lookup = path[len(quick_prefix):]
        rule = rule_for(rules, lookup)
        if rule is not None and not rule.accepts(value):
            raise RecipeError(f"{path} must be {rule.allowed}, got {value!r}")



__all__ = [
    "ANY_TEXT", "DEVICE", "MAPPING", "NON_EMPTY_MAPPING", "NON_ZERO_NUMBERS", "PATH",
    "PATH_OR_NULL", "POSITIVE_NUMBERS", "SEED", "SEEDS", "SOME_POSITIVE_INTS", "TEXTS",
    "THREADS_OR_NULL", "check_rules", "mappings_with", "names_among", "one_of", "resolve",
    "rule_for", "walk",
]
