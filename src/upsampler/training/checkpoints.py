"""HiFi-GAN's checkpoint layout, written atomically, with exact-resume state.

A run folder holds pairs written at the same step ``N``::

    g_0000N      {"generator": state_dict}   (the generator family's release layout:
                 HiFi-GAN's ups.i.* or BigVGAN's ups.i.0.*, weight norm as weight_g / weight_v)
    do_0000N     {"mpd", "msd", "optim_g", "optim_d", "steps", "epoch", ...resume state}
    config.json  the generator and audio fields under HiFi-GAN's names

Each file goes to a hidden temporary name and is renamed into place; ``g`` is written
first and ``do`` last, so a pair counts as complete once its ``do`` file exists. A run
killed mid-write leaves at most a temporary file (removed on the next save) or a lone
``g``, and :func:`latest_checkpoint` returns the last complete pair.
"""

from __future__ import annotations

import pickle
import re
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from upsampler._atomic import atomic_write, is_temporary
from upsampler.models.family import fit_state_dict, release_state_dict

GENERATOR_PREFIX, STATE_PREFIX = "g_", "do_"
STEP_DIGITS = 8
ZIP_FAILURE = "PytorchStreamReader failed"  # torch.load of a truncated or damaged file
_PAIR_NAME = re.compile(rf"^({GENERATOR_PREFIX}|{STATE_PREFIX})(\d{{{STEP_DIGITS}}})$")


def unwrap(module: nn.Module) -> nn.Module:
    """The model inside a ``DistributedDataParallel`` wrapper (the module itself otherwise)."""
    return module.module if isinstance(module, nn.parallel.DistributedDataParallel) else module


def generator_state_dict(generator: nn.Module) -> dict[str, Tensor]:
    """The generator's tensors in its family's original key layout, as ``g_*`` files hold
    them: HiFi-GAN's flat ``ups.i`` / ``resblocks.n`` keys, or BigVGAN's ``ups.i.0`` for a
    ``BigVGANGenerator`` (``load_hifigan`` / ``load_bigvgan`` read them); weight norm as
    ``weight_g`` / ``weight_v``."""
    return {key: tensor.detach().clone()
            for key, tensor in release_state_dict(unwrap(generator)).items()}


def load_generator_state(generator: nn.Module, state_dict: Mapping[str, Tensor],
                         source: str) -> None:
    """Load a checkpoint's generator tensors (any layout of its family, ``fit_state_dict``);
    another architecture is a one-line ``ValueError``."""
    model = unwrap(generator)
    nested, problems = fit_state_dict(model, state_dict)
    if problems:
        raise ValueError(
            f"checkpoint {source!r} was trained with another generator architecture than the "
            f"configured one ({len(problems)} key problems, first: {problems[0]}); "
            f"use its model settings or start a new run folder"
        )
    model.load_state_dict(nested, strict=True)


def load_module_state(module: nn.Module, state_dict: Mapping[str, Tensor], name: str,
                      source: str) -> None:
    """``load_state_dict`` whose mismatch error is one line naming the file and the part."""
    try:
        unwrap(module).load_state_dict(state_dict, strict=True)
    except RuntimeError as error:
        first = " ".join(str(error).split())[:200]
        raise ValueError(
            f"checkpoint {source!r}: {name} does not fit the configured {name} ({first})"
        ) from error


def hifigan_config(generator_fields: Mapping[str, Any], mel_transform: nn.Module,
                   **training: Any) -> dict[str, Any]:
    """A run's ``config.json``: generator and audio fields under HiFi-GAN's names.

    ``load_hifigan(g, config)`` reads the generator fields; the audio fields are
    ``sampling_rate``, ``n_fft``, ``hop_size``, ``win_size``, ``num_mels``, ``fmin`` and
    ``fmax`` of ``mel_transform`` (``fmax_for_loss`` is None: the loss mel has no upper
    limit). ``training`` adds fields such as ``batch_size`` or ``learning_rate``.
    """
    config = dict(generator_fields)
    config.update(
        sampling_rate=int(mel_transform.sample_rate), n_fft=int(mel_transform.n_fft),
        hop_size=int(mel_transform.hop_length), win_size=int(mel_transform.win_length),
        num_mels=int(mel_transform.num_mels), fmin=float(mel_transform.fmin),
        fmax=None if mel_transform.fmax is None else float(mel_transform.fmax),
        fmax_for_loss=None,
    )
    config.update(training)
    return config


def pair_step(name: str) -> tuple[str, int] | None:
    """``("g_", 1000)`` for the file name ``g_00001000``; None for any other name."""
    match = _PAIR_NAME.match(name)
    return (match.group(1), int(match.group(2))) if match else None


def checkpoint_name(prefix: str, step: int) -> str:
    """``g_00001000`` for ``prefix="g_"``, ``step=1000``."""
    return f"{prefix}{step:0{STEP_DIGITS}d}"


def atomic_save(obj: Any, path: Path) -> Path:
    """``torch.save`` to a hidden temporary file beside ``path``, then rename it into place.

    The bytes go through a Python file object, so a full disk surfaces as the OS error
    (``torch.save`` to a path reports only ``basic_ios::clear: iostream error``) and
    ``atomic_write`` raises ``WriteError`` (``cannot write '<path>': no space left on
    device``), the temporary file removed.
    """

    def write(temp: Path) -> None:
        with temp.open("wb") as stream:
            torch.save(obj, stream)

    return atomic_write(path, write)


def complete_steps(directory: Path) -> list[int]:
    """Steps with both ``g_N`` and ``do_N`` present, ascending."""
    if not directory.is_dir():
        return []
    found: dict[str, set[int]] = {GENERATOR_PREFIX: set(), STATE_PREFIX: set()}
    for path in directory.iterdir():
        match = _PAIR_NAME.match(path.name)
        if match and path.is_file():
            found[match.group(1)].add(int(match.group(2)))
    return sorted(found[GENERATOR_PREFIX] & found[STATE_PREFIX])


def latest_checkpoint(directory: Path) -> int | None:
    """The step of the last complete pair in ``directory``, or None."""
    steps = complete_steps(directory)
    return steps[-1] if steps else None


def save_pair(directory: Path, step: int, generator_state: Mapping[str, Tensor],
              training_state: Mapping[str, Any], keep_last: int | None,
              owned: Collection[int] | None = None) -> tuple[Path, Path]:
    """Write ``g_N`` then ``do_N`` atomically; then prune to the last ``keep_last`` pairs.

    A failed write (``WriteError`` for a full disk or an unwritable folder) leaves neither
    file of the pair: ``g_N`` is removed when ``do_N`` fails.

    Pruning removes older pairs, lone ``g`` files and temporary files of killed writes;
    with ``owned`` (the steps the run folder's records list, ``step`` included) only files
    of those steps, so files another program or run put there stay untouched.
    """
    generator_path = atomic_save({"generator": dict(generator_state)},
                                 directory / checkpoint_name(GENERATOR_PREFIX, step))
    try:
        state_path = atomic_save(dict(training_state),
                                 directory / checkpoint_name(STATE_PREFIX, step))
    except BaseException:
        generator_path.unlink(missing_ok=True)  # no lone g_ of a write that failed
        raise
    prune(directory, keep_last, owned)
    return generator_path, state_path


def prune(directory: Path, keep_last: int | None, owned: Collection[int] | None = None) -> None:
    """Keep the last ``keep_last`` complete pairs (all when None); drop stale partial files.

    ``keep_last`` must be a positive integer or None (``ValueError`` otherwise: 0 would
    delete every pair). With ``owned`` only files whose step it lists are considered:
    pairs of other steps are neither counted nor removed.
    """
    if keep_last is not None and (isinstance(keep_last, bool) or not isinstance(keep_last, int)
                                  or keep_last < 1):
        raise ValueError(f"keep_checkpoints must be a positive integer or None, got "
                         f"{keep_last!r}")
    mine = (lambda step: True) if owned is None else set(owned).__contains__
    steps = [step for step in complete_steps(directory) if mine(step)]
    kept = set(steps if keep_last is None else steps[max(0, len(steps) - keep_last):])
    for path in directory.iterdir():
        match = _PAIR_NAME.match(path.name)
        stale_temp = is_temporary(path) and any(
            path.name.startswith(f".{prefix}") for prefix in (GENERATOR_PREFIX, STATE_PREFIX)
        )
        if stale_temp:
            target = _PAIR_NAME.match(path.name[1:].split(".")[0])
            if owned is not None and (target is None or not mine(int(target.group(2)))):
                continue
            path.unlink(missing_ok=True)
        elif match and mine(int(match.group(2))) and int(match.group(2)) not in kept:
            path.unlink(missing_ok=True)


def _load(path: Path) -> Any:
    """``torch.load`` of ``path``; a damaged or missing file is a ``ValueError`` naming it
    with a short reason (torch's own messages run to several hundred characters)."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises several unrelated types for damaged files
        message = " ".join(str(error).split())
        if isinstance(error, pickle.UnpicklingError):
            why = "not a torch file of tensors (garbage, or another kind of file)"
        elif isinstance(error, EOFError):
            why = "empty or cut short"
        elif ZIP_FAILURE in message:
            why = "truncated or damaged (its zip archive does not read)"
        else:
            why = f"{type(error).__name__}: {message[:160]}"
        raise ValueError(f"{str(path)!r} is not readable: {why}") from error


def read_pair(directory: Path, step: int) -> tuple[dict[str, Tensor], dict[str, Any]]:
    """The generator state_dict and the training state of the pair at ``step``.

    A file that does not load, a ``g_`` without a ``generator`` dict of tensors, or a
    ``do_`` that is not a dict is a one-line ``ValueError`` naming that file.
    """
    generator_path = directory / checkpoint_name(GENERATOR_PREFIX, step)
    state_path = directory / checkpoint_name(STATE_PREFIX, step)
    generator = _load(generator_path)
    if (not isinstance(generator, Mapping) or not isinstance(generator.get("generator"), Mapping)
            or not all(isinstance(v, Tensor) for v in generator["generator"].values())):
        raise ValueError(f"{str(generator_path)!r} holds no 'generator' state_dict of tensors")
    state = _load(state_path)
    if not isinstance(state, Mapping):
        raise ValueError(f"{str(state_path)!r} holds a {type(state).__name__}, not the dict "
                         f"of training state a do_ file holds")
    return dict(generator["generator"]), dict(state)


__all__ = [
    "atomic_save", "checkpoint_name", "hifigan_config", "complete_steps", "generator_state_dict",
    "latest_checkpoint", "load_generator_state", "load_module_state", "pair_step", "prune",
    "read_pair",
    "save_pair", "unwrap",
]
