"""Deployment section: one generator in eager torch, TorchScript and onnxruntime, side by side.

Four ways to run the same inference copy (weight norm folded, eval) on the same mel, timed
interleaved on ``num_threads`` threads: eager torch, a TorchScript trace, onnxruntime on our
dense export (``lowering="dense"``) and onnxruntime on the export that lowers our transposed
layers to ONNX's ``ConvTranspose`` node; both ONNX files write the MRFs for onnxruntime's
blocked layout when ``blocked_residuals`` (``upsampler.onnx_layout``). Ratios are each
runtime's median over eager's.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable

import torch
from omegaconf import DictConfig
from torch import nn

from upsampler import BigVGANGenerator, HiFiGANGenerator
from upsampler.recipe_support.benchmarks.timing import interleaved_many

RUNTIMES = ("eager", "torchscript", "ort_dense", "ort_conv_transpose")
EXPORT_BATCH = 2  # the batch axis stays dynamic


def deployment_models(section: DictConfig) -> list[tuple[str, nn.Module]]:
    """``(label, generator)`` for the section's HiFi-GAN and BigVGAN presets, folded, eval."""
    widths = {} if section.width is None else {"upsample_initial_channel": section.width}
    models: list[tuple[str, nn.Module]] = []
    for preset in section.presets:
        models.append((f"hifigan_{preset}", HiFiGANGenerator.from_preset(preset, **widths)))
    for preset in section.bigvgan_presets:
        models.append((f"bigvgan_{preset}", BigVGANGenerator.from_preset(preset, **widths)))
    for _, model in models:
        model.eval()
        model.remove_weight_norm()
    return models


def runners(model: nn.Module, folder: Path, label: str, section: DictConfig,
            num_threads: int) -> tuple[dict[str, Callable[[torch.Tensor], Any]], dict[str, float]]:
    """The four runtimes of ``model`` as ``mel -> output`` calls, and each export's seconds."""
    from upsampler.export import (
        INPUT_NAME, export_onnx, export_torchscript, onnx_session,
    )

    example = torch.randn(EXPORT_BATCH, model.num_mels, section.export_frames)
    seconds: dict[str, float] = {}
    start = time.perf_counter()
    traced_path = export_torchscript(model, folder / f"{label}.pt", example, "trace")
    seconds["torchscript_export_s"] = time.perf_counter() - start
    traced = torch.jit.load(str(traced_path))
    calls: dict[str, Callable[[torch.Tensor], Any]] = {
        "eager": model, "torchscript": traced}
    for lowering in ("dense", "conv_transpose"):
        start = time.perf_counter()
        path = export_onnx(model, folder / f"{label}_{lowering}.onnx", example, lowering=lowering,
                           blocked_residuals=section.blocked_residuals)
        seconds[f"onnx_{lowering}_export_s"] = time.perf_counter() - start
        session = onnx_session(path, num_threads)
        calls[f"ort_{lowering}"] = (
            lambda mel, session=session: torch.from_numpy(
                session.run(None, {INPUT_NAME: mel.numpy()})[0]))
    return calls, seconds


def bench_onnx(cfg: DictConfig) -> list[dict[str, Any]]:
    """Eager vs TorchScript vs onnxruntime (dense and ConvTranspose exports), batch 1.

    ``<runtime>_ratio`` is the runtime's median time over eager's (below 1: faster);
    ``max_abs_diff`` is the largest difference of any runtime from eager at the timed length
    (not the export's length).
    """
    section = cfg.onnx
    folder = Path(cfg.output_dir)
    rows = []
    for label, model in deployment_models(section):
        calls, seconds = runners(model, folder, label, section, cfg.num_threads)
        mel = torch.randn(1, model.num_mels, section.mel_frames)
        with torch.no_grad():
            expected = model(mel)
            diff = max(float((calls[name](mel) - expected).abs().max()) for name in RUNTIMES[1:])

            def timed(name: str) -> Callable[[], object]:
                return lambda: calls[name](mel)

            timings = interleaved_many({name: timed(name) for name in RUNTIMES}, section.timing)
        eager = timings["eager_ms"]
        row: dict[str, Any] = {"model": label, "mel_frames": section.mel_frames,
                               "threads": cfg.num_threads, "reps": timings["reps"],
                               "blocked_residuals": section.blocked_residuals}
        row.update({f"{name}_ms": timings[f"{name}_ms"] for name in RUNTIMES})
        row.update({f"{name}_ratio": timings[f"{name}_ms"] / eager for name in RUNTIMES[1:]})
        row.update({"max_abs_diff": diff, **seconds})
        rows.append(row)
    return rows
