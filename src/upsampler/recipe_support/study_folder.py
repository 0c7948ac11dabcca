"""The study's run folder: its options, the settings its runs were made with, its labels.

``recipes/study.py`` trains one run per upsampler kind into ``<output_dir>/runs/<kind>`` and
records in ``study_settings.json`` what decides those runs (:data:`DECIDING`). A rerun with
other settings is refused listing each change, a larger ``max_steps`` extends every kind,
and the report's labels come from what the runs reached, never from a newer config.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from upsampler.recipe_support.errors import RecipeError, one_line
from upsampler.recipe_support.options import check_number, check_options, check_path
from upsampler.recipe_support.records import settings_changes
from upsampler.training.checkpoints import latest_checkpoint

LISTS = ("training.txt", "validation.txt")  # HiFi-GAN's file lists in the corpus folder
RUN_CONFIG = "config.json"  # recipes/train.py's record of the run's generator and front end
SETTINGS_FILE = "study_settings.json"  # what the runs of this folder were made with
SETTINGS_FORMAT = 1
# the settings the report states and the rows depend on (the speed columns on the last two):
# a rerun into the same folder must keep them
DECIDING = ("corpus", "warmup_steps", "validation_utterances", "batch_size", "seed",
            "train_overrides", "num_threads", "workers")
RECORDED_BY_TRAIN = ("batch_size", "seed")  # in each run's config.json (older folders)


def _check_strings(value: Any, name: str, allow_empty: bool) -> list[str]:
    """``value`` (option ``name``) must be a list of non-empty strings (a non-empty list unless
    ``allow_empty``); returns it as a list."""
    items = list(value) if OmegaConf.is_list(value) or isinstance(value, list) else None
    if items is None or (not items and not allow_empty) or not all(
            isinstance(item, str) and item.strip() for item in items):
        wanted = "a list of non-empty strings" if allow_empty else \
            "a non-empty list of non-empty strings"
        shown = items if items is not None else value
        raise RecipeError(f"{name} must be {wanted}, got {shown!r}")
    return items


def check_study(cfg: DictConfig) -> None:
    """Every option of ``configs/study.yaml``, ``probes`` included: one ``RecipeError`` line
    naming the first bad option, its value and what is allowed. Reads the corpus lists,
    writes nothing."""
    check_path(cfg, "corpus")
    check_path(cfg, "output_dir")
    variants = cfg.get("variants")
    if not isinstance(variants, Mapping) or not variants:
        raise RecipeError(f"variants must map each kind to its recipes/train.py overrides, "
                          f"got {variants!r}")
    for kind in variants:
        _check_strings(variants[kind], f"variants.{kind}", allow_empty=True)
    kinds = _check_strings(cfg.get("kinds"), "kinds", allow_empty=False)
    unknown = [kind for kind in kinds if kind not in variants]
    repeated = sorted({kind for kind in kinds if kinds.count(kind) > 1})
    if unknown or repeated:
        raise RecipeError(f"kinds must be a non-empty list of distinct kinds from "
                          f"{list(variants)}, got {kinds} (unknown: {unknown}, repeated: "
                          f"{repeated})")
    for field, minimum in (("max_steps", 1), ("validation_every", 1), ("warmup_steps", 0),
                           ("validation_utterances", 1), ("batch_size", 1), ("seed", 0),
                           ("workers", 1)):
        check_number(cfg, field, minimum=minimum, integer=True)
    check_number(cfg, "num_threads", minimum=1, integer=True, nullable=True)
    check_options(cfg, booleans=("deterministic", "progress"))
    _check_strings(cfg.get("train_overrides"), "train_overrides", allow_empty=True)
    probes = cfg.get("probes")
    if not isinstance(probes, Mapping):
        raise RecipeError(f"probes must hold speech_utterance and frames, got {probes!r}")
    for field in ("speech_utterance", "frames"):
        value = probes.get(field)
        minimum = 0 if field == "speech_utterance" else 1
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise RecipeError(f"probes.{field} must be an integer >= {minimum}, got {value!r}")
    if cfg.warmup_steps > cfg.max_steps:
        raise RecipeError(f"warmup_steps must be at most max_steps={cfg.max_steps}, got "
                          f"{cfg.warmup_steps}")
    corpus = Path(str(cfg.corpus)).expanduser()
    missing = [name for name in LISTS if not (corpus / name).is_file()]
    if missing:
        raise RecipeError(f"corpus must be a folder holding {list(LISTS)} (make data), got "
                          f"{str(cfg.corpus)!r}: {missing} not found")


def study_settings(cfg: DictConfig) -> dict[str, Any]:
    """The settings ``study_settings.json`` records: :data:`DECIDING` (the corpus as an
    absolute path) and ``variants`` of the kinds run."""
    settings: dict[str, Any] = {"format": SETTINGS_FORMAT}
    for key in DECIDING:
        value = OmegaConf.to_container(cfg[key]) if OmegaConf.is_config(cfg[key]) else cfg[key]
        settings[key] = value
    settings["corpus"] = str(Path(str(cfg.corpus)).expanduser().resolve())
    settings["variants"] = {kind: list(cfg.variants[kind]) for kind in cfg.kinds}
    return settings


def reached_steps(output_dir: Path, kinds: list[str]) -> dict[str, int]:
    """The last checkpoint step of each of ``kinds`` whose run folder holds a pair."""
    steps = {}
    for kind in kinds:
        run_dir = output_dir / "runs" / kind
        step = latest_checkpoint(run_dir) if run_dir.is_dir() else None
        if step is not None:
            steps[kind] = int(step)
    return steps


def recorded_changes(cfg: DictConfig, output_dir: Path, settings: Mapping[str, Any]
                     ) -> tuple[dict[str, Any] | None, list[str]]:
    """``(stored settings or None, changes)``: what the folder's runs were made with that
    ``settings`` would change, as ``"key: old -> new"``.

    A folder without ``study_settings.json`` (made before the study recorded it) is checked
    against what each kind's run recorded itself (``config.json``: batch size and seed).
    """
    path = output_dir / SETTINGS_FILE
    if path.is_file():
        try:
            stored = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(stored, dict):
                raise ValueError("not a JSON object")
        except (OSError, ValueError) as error:
            raise RecipeError(f"{str(path)!r} cannot be read ({one_line(error)}); delete it only "
                              f"if the runs beside it were made with this config") from error
        shared = {key: value for key, value in stored.items() if key != "variants"}
        changes = settings_changes(shared, {k: v for k, v in settings.items() if k != "variants"})
        old_variants = stored.get("variants") or {}
        changes += [f"variants.{kind}: {old_variants[kind]!r} -> {overrides!r}"
                    for kind, overrides in settings["variants"].items()
                    if kind in old_variants and old_variants[kind] != overrides]
        return stored, changes
    changes = []
    for kind in cfg.kinds:
        config_path = output_dir / "runs" / kind / RUN_CONFIG
        if not config_path.is_file():
            continue
        try:
            recorded = json.loads(config_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise RecipeError(f"{str(config_path)!r} cannot be read ({one_line(error)})"
                              ) from error
        changes += [f"runs/{kind} {key}: {recorded.get(key)!r} -> {settings[key]!r}"
                    for key in RECORDED_BY_TRAIN if recorded.get(key) != settings[key]]
    return None, changes


def claim_study(cfg: DictConfig, output_dir: Path) -> dict[str, Any]:
    """The settings to record, or one ``RecipeError`` line: a folder whose runs were made
    with other settings (each change listed), or a ``max_steps`` below the step a kind's run
    already reached. Reads only."""
    settings = study_settings(cfg)
    stored, changes = recorded_changes(cfg, output_dir, settings)
    folder = str(output_dir)
    if changes:
        raise RecipeError(f"output_dir {folder!r} holds a study made with other settings ("
                          + "; ".join(changes) + "); rerun with the recorded values, choose a "
                          f"new hydra.run.dir (or output_dir) or delete {folder!r} to redo it")
    beyond = {kind: step for kind, step in reached_steps(output_dir, list(cfg.kinds)).items()
              if step > cfg.max_steps}
    if beyond:
        reached = ", ".join(f"{kind} at step {step}" for kind, step in beyond.items())
        raise RecipeError(f"max_steps must be at least the step the runs in {folder!r} reached "
                          f"({reached}), got {cfg.max_steps}: a study's budget can grow, not "
                          f"shrink; choose a new hydra.run.dir (or output_dir) for a smaller one")
    if stored is not None:
        settings["variants"] = {**stored.get("variants", {}), **settings["variants"]}
    return settings


def steps_label(steps: Mapping[str, int]) -> str:
    """``"4 steps each"``, or each kind's step where they differ."""
    distinct = sorted(set(steps.values()))
    if len(distinct) == 1:
        return f"{distinct[0]} steps each"
    return "steps reached: " + ", ".join(f"{kind} {step}" for kind, step in steps.items())


__all__ = ["DECIDING", "LISTS", "RUN_CONFIG", "SETTINGS_FILE", "check_study", "claim_study",
           "reached_steps", "steps_label", "study_settings"]
