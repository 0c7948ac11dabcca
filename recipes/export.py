"""Export a vocoder generator to ONNX and a torch.export program, verified (Hydra recipe).

    python recipes/export.py                                      # untrained V1
    python recipes/export.py model=hifigan_v3 formats=[onnx]
    python recipes/export.py formats=[torchscript]                # deprecated by torch 2.13
    python recipes/export.py model=bigvgan_base_22k lowering=conv_transpose
    python recipes/export.py checkpoint=g_02500000 model_config=config.json name=lj_v1
    python recipes/export.py -m model=hifigan_v1,hifigan_v2,hifigan_v3 \
        upsampler=transposed,nearest_conv,linear_conv,subpixel,subpixel_icnr   # a matrix

Every option is checked before anything is built (one line naming it otherwise). Writes
``<name>.onnx`` and ``<name>.pt2`` (a ``torch.export`` program) to temporary names in
``<output_dir>``, runs each on seeded random mels of ``verify_frames`` lengths (none of
them the export's), logs the max abs error against eager PyTorch per format and the ONNX
graph's node types, then renames the files into place and writes ``export.json``. An error
above ``tolerance`` stops the run with status 1 and leaves no file under a final name.
``lowering=conv_transpose`` writes our transposed layers as ONNX's own ``ConvTranspose``
node instead of our dense formulation (same numbers). TorchScript (``<name>.pt``) is
written only when ``formats`` names it, with a warning: torch 2.13 deprecates it.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path
from typing import Any, Callable

import hydra
import torch
from omegaconf import DictConfig, OmegaConf
from torch import Tensor, nn

from upsampler.export import (
    LOWERINGS,
    MIN_EXPORT_LENGTH,
    export_onnx,
    export_program,
    export_torchscript,
    exportable,
    max_abs_error,
    onnx_node_types,
    run_onnx,
    run_program,
    run_torchscript,
)
from upsampler.recipe_support.build import build_generator
from upsampler.recipe_support.errors import (
    RecipeError,
    check_run_dir_override,
    one_line,
    run_or_exit,
)
from upsampler._atomic import WriteError, temporary_path, write_json
from upsampler.recipe_support.recipe_options import check_writable_dir
from upsampler.recipe_support.options import (
    check_choice,
    check_int_list,
    check_number,
    check_options,
    check_path,
)

log = logging.getLogger("export")

SUFFIXES = {"onnx": ".onnx", "program": ".pt2", "torchscript": ".pt"}
DEPRECATED_FORMATS = {
    "torchscript": "torch 2.13 deprecates TorchScript (torch.jit.trace/save/load); use "
                   "formats=[onnx, program] (ONNX, torch.export .pt2) or torch.compile",
}
SUMMARY_FILE = "export.json"
TRACE = "trace"  # torch.jit.script cannot compile a whole generator
MIN_EXPORT_BATCH = 2  # a batch of 1 would be traced as a constant


class ExportError(RecipeError):
    """A setup problem or a failed verification; reported as one line."""


def inference_generator(cfg: DictConfig) -> nn.Module:
    """The configured generator (from a checkpoint when given) as an inference copy.

    Any problem building it (bad model config, missing or mismatched checkpoint) raises
    ``ExportError`` with a one-line message.
    """
    try:
        return exportable(build_generator(cfg))
    except Exception as error:  # setup problems end the run with one line, not a traceback
        raise ExportError(one_line(error)) from error


def write_file(fmt: str, generator: nn.Module, path: Path, example: Tensor,
               cfg: DictConfig) -> Callable[[Tensor], Tensor]:
    """Export ``generator`` in format ``fmt`` to ``path``; return a runner of the written file."""
    if fmt == "torchscript":
        export_torchscript(generator, path, example, cfg.torchscript_method)
        return lambda mel: run_torchscript(path, mel)
    if fmt == "program":
        export_program(generator, path, example)
        return lambda mel: run_program(path, mel)
    export_onnx(generator, path, example, lowering=cfg.lowering)
    return lambda mel: run_onnx(path, mel, cfg.num_threads)


def node_summary(node_types: dict[str, int]) -> str:
    """``"412 nodes: Conv 74, LeakyRelu 69, ..."``, most frequent first."""
    listed = ", ".join(f"{op} {count}" for op, count in node_types.items())
    return f"{sum(node_types.values())} nodes: {listed}"


def check_config(cfg: DictConfig) -> None:
    """Raise ``ExportError`` naming the first option of configs/export.yaml whose value is
    not allowed; nothing is built, read or written. (The ``model``, ``audio`` and
    ``upsampler`` groups are checked when the generator is built.)"""
    try:
        check_path(cfg, "checkpoint", nullable=True)
        check_path(cfg, "model_config", nullable=True)
        check_path(cfg, "output_dir")
        check_options(cfg, integers=("seed",), positive_or_null=("num_threads",))
        check_number(cfg, "example_frames", minimum=MIN_EXPORT_LENGTH, integer=True)
        check_number(cfg, "batch_size", minimum=MIN_EXPORT_BATCH, integer=True)
        check_number(cfg, "tolerance", minimum=0)
        check_choice(cfg, "lowering", LOWERINGS)
        verify_frames = check_int_list(cfg, "verify_frames", MIN_EXPORT_LENGTH)
    except RecipeError as error:
        raise ExportError(str(error)) from error
    name = cfg.name
    if not isinstance(name, str) or not name.strip() or Path(name).name != name \
            or name in (".", ".."):
        raise ExportError(f"name must be a file stem without a folder (e.g. generator), "
                          f"got {name!r}")
    if cfg.torchscript_method != TRACE:
        raise ExportError(
            f"torchscript_method must be {TRACE!r}, got {cfg.torchscript_method!r}: the recipe "
            f"exports a generator, which torch.jit.script cannot compile (it scripts single "
            f"layers only; see upsampler.export.export_torchscript)")
    formats = cfg.formats
    if isinstance(formats, str) or not OmegaConf.is_list(formats) and not isinstance(formats, list):
        raise ExportError(f"formats must be a non-empty list among {sorted(SUFFIXES)}, "
                          f"got {formats!r}")
    unknown = [fmt for fmt in formats if fmt not in SUFFIXES]
    if not formats or unknown:
        raise ExportError(f"formats must be among {sorted(SUFFIXES)}, got {unknown or []}")
    if cfg.example_frames in verify_frames:
        raise ExportError(
            f"verify_frames {verify_frames} must not contain example_frames="
            f"{cfg.example_frames}: the check is at lengths the export has not seen"
        )


def run(cfg: DictConfig) -> dict[str, Any]:
    """Export every format of ``cfg.formats``; return ``{format: {path, max_abs_error}}``.

    Every option is checked first. Each file is written to a temporary name beside its
    target and verified there; only when every format is within ``tolerance`` are they
    renamed into place and ``export.json`` written, so a failed verification leaves no
    file under a final name (an earlier export's files stay as they were).
    """
    check_config(cfg)
    for fmt in sorted(set(cfg.formats) & set(DEPRECATED_FORMATS)):
        log.warning("formats=%s: %s", fmt, DEPRECATED_FORMATS[fmt])
    try:
        check_writable_dir(cfg.output_dir, "output_dir")
    except RecipeError as error:
        raise ExportError(str(error)) from error
    if cfg.num_threads is not None:
        torch.set_num_threads(int(cfg.num_threads))
    generator = inference_generator(cfg)
    output_dir = Path(cfg.output_dir)
    try:
        output_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ExportError(f"output_dir {str(output_dir)!r} cannot be created: "
                          f"{one_line(error)}") from error
    rng = torch.Generator().manual_seed(cfg.seed)
    num_mels = int(generator.num_mels)
    example = torch.randn(cfg.batch_size, num_mels, cfg.example_frames, generator=rng)
    mels = [torch.randn(cfg.batch_size, num_mels, frames, generator=rng)
            for frames in cfg.verify_frames]
    with torch.no_grad():
        expected = [generator(mel) for mel in mels]
    results: dict[str, Any] = {}
    paths = {fmt: output_dir / f"{cfg.name}{SUFFIXES[fmt]}" for fmt in cfg.formats}
    refuse_foreign_files(output_dir, list(paths.values()))
    temps: dict[str, Path] = {}
    try:
        for fmt, path in paths.items():
            temps[fmt] = temp = temporary_path(path)
            results[fmt] = export_and_verify(fmt, generator, path, temp, example, mels,
                                             expected, cfg)
        for fmt, path in paths.items():
            os.replace(temps.pop(fmt), path)
            log.info("wrote %s (%s, %.1f MiB); max abs error against eager %s at %s mel "
                     "frames, batch %d", path, fmt, path.stat().st_size / 2**20,
                     ", ".join(f"{e:.2g}" for e in results[fmt]["max_abs_errors"]),
                     list(cfg.verify_frames), cfg.batch_size)
    except OSError as error:  # a read-only or full output folder
        raise ExportError(f"cannot write into {str(output_dir)!r}: {one_line(error)}; no "
                          f"file was written") from error
    finally:
        for temp in temps.values():
            temp.unlink(missing_ok=True)
    summary = {"checkpoint": cfg.checkpoint, "hop_length": int(generator.hop_length),
               "verify_frames": list(cfg.verify_frames), "formats": results}
    try:
        write_json(output_dir / SUMMARY_FILE, summary)
    except OSError as error:  # WriteError: "cannot write '<path>': no space left on device"
        raise ExportError(one_line(error) if isinstance(error, WriteError) else
                          f"cannot write {str(output_dir / SUMMARY_FILE)!r}: "
                          f"{one_line(error)}") from error
    return results


def export_and_verify(fmt: str, generator: nn.Module, path: Path, temp: Path, example: Tensor,
                      mels: list[Tensor], expected: list[Tensor],
                      cfg: DictConfig) -> dict[str, Any]:
    """Export ``fmt`` to ``temp``, run it on ``mels`` and return its result for ``path``.

    Raises ``ExportError`` when the exporter fails or the file differs from eager by more
    than ``cfg.tolerance`` (the caller removes ``temp``).
    """
    try:
        runner = write_file(fmt, generator, temp, example, cfg)
        errors = [max_abs_error(runner(mel), ref) for mel, ref in zip(mels, expected)]
    except OSError:
        raise
    except Exception as error:  # an exporter or runtime failure: one line, not a traceback
        raise ExportError(f"{fmt} export failed: {one_line(error)}; no file was written"
                          ) from error
    error = max(errors)
    result: dict[str, Any] = {"path": str(path), "max_abs_error": error,
                              "max_abs_errors": errors}  # one per verify_frames length
    if fmt == "onnx":
        result["lowering"] = cfg.lowering
        result["node_types"] = onnx_node_types(temp)
        log.info("onnx graph (lowering=%s): %s", cfg.lowering, node_summary(result["node_types"]))
    if error > cfg.tolerance:
        raise ExportError(f"{fmt} export differs from eager by {error:.3g} > "
                          f"tolerance={cfg.tolerance}; no file was written")
    return result


def refuse_foreign_files(output_dir: Path, paths: list[Path]) -> None:
    """Raise ``ExportError`` if a path exists that no earlier export into the folder wrote.

    An earlier export lists its files in ``export.json``; anything else is the user's.
    """
    summary = output_dir / SUMMARY_FILE
    owned: set[str] = set()
    if summary.is_file():
        try:
            formats = json.loads(summary.read_text(encoding="utf-8")).get("formats", {})
            owned = {str(Path(entry["path"]).resolve()) for entry in formats.values()}
        except (ValueError, KeyError, AttributeError, TypeError):
            owned = set()
    for path in paths:
        if path.exists() and str(path.resolve()) not in owned:
            raise ExportError(
                f"{str(path)!r} exists and was not written by an export into {str(output_dir)!r}"
                f" (not listed in its {SUMMARY_FILE}); choose another name= or output_dir"
            )


@hydra.main(config_path="../configs", config_name="export", version_base="1.3")
def main(cfg: DictConfig) -> None:
    """Command-line entry point: a setup or verification problem exits with status 1."""
    log.debug("config:\n%s", OmegaConf.to_yaml(cfg))
    run_or_exit(run, cfg, log)


if __name__ == "__main__":
    check_run_dir_override(sys.argv)
    main()
