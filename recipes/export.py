"""Export a vocoder generator to TorchScript and ONNX and verify the files (Hydra recipe).

    python recipes/export.py                                      # untrained V1
    python recipes/export.py model=hifigan_v3 formats=[onnx]
    python recipes/export.py model=bigvgan_base_22k lowering=conv_transpose
    python recipes/export.py checkpoint=g_02500000 model_config=config.json name=lj_v1
    python recipes/export.py -m model=hifigan_v1,hifigan_v2,hifigan_v3 \
        upsampler=transposed,nearest_conv,linear_conv,subpixel,subpixel_icnr   # a matrix

Writes ``<output_dir>/<name>.pt`` and ``<name>.onnx`` (each to a temporary name, then
renamed), runs each on seeded random mels of ``verify_frames`` lengths (none of them the
export's), logs the max abs error against eager PyTorch per format and the ONNX graph's
node types, and writes ``export.json``. An error above ``tolerance`` stops the run with
status 1. ``lowering=conv_transpose`` writes our transposed layers as ONNX's own
``ConvTranspose`` node instead of our dense formulation (same numbers).
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Any, Callable

import hydra
import torch
from omegaconf import DictConfig, OmegaConf
from torch import Tensor, nn

from upsampler.export import (
    LOWERINGS,
    export_onnx,
    export_torchscript,
    exportable,
    max_abs_error,
    onnx_node_types,
    run_onnx,
    run_torchscript,
)
from upsampler.recipe_support.build import build_generator
from upsampler.recipe_support.errors import (
    RecipeError,
    check_run_dir_override,
    one_line,
    run_or_exit,
)
from upsampler.files import write_json
from upsampler.recipe_support.options import check_options

log = logging.getLogger("export")

SUFFIXES = {"torchscript": ".pt", "onnx": ".onnx"}
SUMMARY_FILE = "export.json"


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
    export_onnx(generator, path, example, lowering=cfg.lowering)
    return lambda mel: run_onnx(path, mel, cfg.num_threads)


def node_summary(node_types: dict[str, int]) -> str:
    """``"412 nodes: Conv 74, LeakyRelu 69, ..."``, most frequent first."""
    listed = ", ".join(f"{op} {count}" for op, count in node_types.items())
    return f"{sum(node_types.values())} nodes: {listed}"


def run(cfg: DictConfig) -> dict[str, Any]:
    """Export every format of ``cfg.formats``; return ``{format: {path, max_abs_error}}``."""
    check_options(cfg, integers=("seed", "batch_size", "example_frames"),
                  positive_or_null=("num_threads",))
    if cfg.lowering not in LOWERINGS:
        raise ExportError(f"lowering must be one of {list(LOWERINGS)}, got {cfg.lowering!r}")
    unknown = sorted(set(cfg.formats) - set(SUFFIXES))
    if unknown:
        raise ExportError(f"formats must be among {sorted(SUFFIXES)}, got {unknown}")
    if cfg.example_frames in cfg.verify_frames:
        raise ExportError(
            f"verify_frames {list(cfg.verify_frames)} must not contain example_frames="
            f"{cfg.example_frames}: the check is at lengths the export has not seen"
        )
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
    for fmt, path in paths.items():
        try:
            runner = write_file(fmt, generator, path, example, cfg)
        except OSError as error:  # a read-only or full output folder
            raise ExportError(f"cannot write {str(path)!r}: {one_line(error)}") from error
        errors = [max_abs_error(runner(mel), ref) for mel, ref in zip(mels, expected)]
        error = max(errors)
        results[fmt] = {"path": str(path), "max_abs_error": error,
                        "max_abs_errors": errors}  # one per verify_frames length
        log.info("wrote %s (%s, %.1f MiB); max abs error against eager %s at %s mel frames, "
                 "batch %d", path, fmt, path.stat().st_size / 2**20,
                 ", ".join(f"{e:.2g}" for e in errors), list(cfg.verify_frames),
                 cfg.batch_size)
        if fmt == "onnx":
            results[fmt]["lowering"] = cfg.lowering
            results[fmt]["node_types"] = onnx_node_types(path)
            log.info("onnx graph (lowering=%s): %s", cfg.lowering,
                     node_summary(results[fmt]["node_types"]))
        if error > cfg.tolerance:
            raise ExportError(f"{fmt} export differs from eager by {error:.3g} > "
                              f"tolerance={cfg.tolerance}")
    summary = {"checkpoint": cfg.checkpoint, "hop_length": int(generator.hop_length),
               "verify_frames": list(cfg.verify_frames), "formats": results}
    try:
        write_json(output_dir / SUMMARY_FILE, summary)
    except OSError as error:
        raise ExportError(f"cannot write {str(output_dir / SUMMARY_FILE)!r}: "
                          f"{one_line(error)}") from error
    return results


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
