"""Shared by the config and recipe tests: repository folders, recipes as modules, Hydra compose."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "configs"
RECIPES = REPO / "recipes"
HYDRA_VERSION_BASE = "1.3"


def load_recipe(name: str) -> ModuleType:
    """Import ``recipes/<name>.py`` (not a package) so tests can call its ``run(cfg)``."""
    spec = importlib.util.spec_from_file_location(f"recipe_{name}", RECIPES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def compose_config(name: str, overrides: Sequence[str] = ()) -> DictConfig:
    """``configs/<name>.yaml`` composed with Hydra's compose API and ``overrides``."""
    with initialize_config_dir(config_dir=str(CONFIGS), version_base=HYDRA_VERSION_BASE):
        return compose(name, overrides=list(overrides))
