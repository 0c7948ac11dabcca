"""Aliasing of HiFi-GAN and BigVGAN building blocks, with and without anti-aliasing.

Variants (random initialisation, ``seed``), all at the width of each model's last stage:

* ``snake`` / ``snake_aa``: BigVGAN's SnakeBeta at the base rate / inside ``Activation1d``;
* ``amp1`` / ``amp1_aa``: one ``AMPBlock1`` (kernel 3, dilations 1, 3, 5) without / with
  the filters (the same weights);
* ``bigvgan_stage`` / ``bigvgan_stage_aa``: BigVGAN-base's last stage (transposed conv
  x2, k 4, then the mean of three AMP blocks, kernels 3, 7, 11);
* ``hifigan_v1_stage_<kind>``: HiFi-GAN V1's last stage (lrelu -> x2 upsampler -> MRF)
  for each upsampler kind.

``generator_stage_aliasing`` measures one stage of a whole generator the same way (the
analyze recipe reports its last stage).

The stages add the upsampler's images to the aliases: at initialisation those images (not
the activation's aliases) dominate, which is what the stage rows show.
"""

from __future__ import annotations

import copy
from typing import Any, Sequence

import torch
from torch import nn

from upsampler.analysis.aliasing import AliasingReport, aliasing_sweep, mean_aliasing_db
from upsampler.layers.amp import AMPBlock1
from upsampler.layers.activation1d import Activation1d
from upsampler.layers.snake import SnakeBeta
from upsampler.layers.upsample_block import MRF, UpsampleBlock, build_upsampler
from upsampler.layers.upsamplers import UPSAMPLERS

SWEEP = (0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45)  # cycles per input sample
NEAR_NYQUIST = 0.45
LAST_STAGE = dict(in_channels=64, out_channels=32, stride=2, kernel_size=4)  # V1 / base
BLOCK_KERNELS = (3, 7, 11)
BLOCK_DILATIONS = (1, 3, 5)


def bigvgan_stage(
    in_channels: int, out_channels: int, stride: int, kernel_size: int, anti_alias: bool = True
) -> UpsampleBlock:
    """BigVGAN-base's stage: transposed conv, then the mean of three AMP blocks.

    ``(B, C_in, T) -> (B, C_out, T * stride)``.
    """
    upsample = build_upsampler("transposed", in_channels, out_channels, stride, kernel_size)
    mrf = MRF([
        AMPBlock1(out_channels, k, BLOCK_DILATIONS, "snakebeta", True, anti_alias)
        for k in BLOCK_KERNELS
    ])
    return UpsampleBlock(upsample, mrf, stride)


def _variants(seed: int) -> list[tuple[str, nn.Module, int, int]]:
    """(name, module, input channels, stride) for every variant, each seeded alike."""
    channels = LAST_STAGE["out_channels"]
    built: list[tuple[str, nn.Module, int, int]] = []
    for anti_alias in (False, True):
        suffix = "_aa" if anti_alias else ""
        torch.manual_seed(seed)
        snake = Activation1d(SnakeBeta(channels, alpha_logscale=True), anti_alias=anti_alias)
        built.append((f"snake{suffix}", snake, channels, 1))
        torch.manual_seed(seed)
        block = AMPBlock1(channels, BLOCK_KERNELS[0], BLOCK_DILATIONS, "snakebeta", True,
                          anti_alias)
        built.append((f"amp1{suffix}", block, channels, 1))
        torch.manual_seed(seed)
        built.append((f"bigvgan_stage{suffix}", bigvgan_stage(**LAST_STAGE, anti_alias=anti_alias),
                      LAST_STAGE["in_channels"], LAST_STAGE["stride"]))
    for kind in UPSAMPLERS:
        torch.manual_seed(seed)
        stage = UpsampleBlock.hifigan(LAST_STAGE["in_channels"], LAST_STAGE["out_channels"],
                                      LAST_STAGE["stride"], LAST_STAGE["kernel_size"],
                                      upsampler=kind)
        built.append((f"hifigan_v1_stage_{kind}", stage, LAST_STAGE["in_channels"],
                       LAST_STAGE["stride"]))
    return built


def compare_aliasing(
    frequencies: Sequence[float] = SWEEP, seed: int = 0, amplitude: float = 1.0
) -> tuple[list[dict], dict[str, list[AliasingReport]]]:
    """Rows ``{variant, mean_db, near_nyquist_db, per_frequency_db}`` and each sweep."""
    rows, sweeps = [], {}
    for name, module, in_channels, stride in _variants(seed):
        reports = aliasing_sweep(module.eval(), frequencies, in_channels, stride, amplitude)
        sweeps[name] = reports
        nearest = min(reports, key=lambda r: abs(r.frequency - NEAR_NYQUIST))
        rows.append({
            "variant": name,
            "mean_db": mean_aliasing_db(reports),
            "near_nyquist_db": nearest.aliasing_db,
            "near_nyquist_frequency": nearest.frequency,
            "per_frequency_db": [r.aliasing_db for r in reports],
        })
    return rows, sweeps


def _sweep_summary(module: nn.Module, in_channels: int, stride: int,
                   frequencies: Sequence[float]) -> dict[str, Any]:
    reports = aliasing_sweep(module, frequencies, in_channels, stride)
    nearest = min(reports, key=lambda r: abs(r.frequency - NEAR_NYQUIST))
    return {"mean_db": mean_aliasing_db(reports), "near_nyquist_db": nearest.aliasing_db,
            "near_nyquist_frequency": nearest.frequency,
            "per_frequency_db": [r.aliasing_db for r in reports]}


def generator_stage_aliasing(
    generator: nn.Module, stage: int = -1, frequencies: Sequence[float] = SWEEP
) -> dict[str, Any]:
    """Aliasing of one stage of a trained or initialised generator (``generator.stages``).

    The stage (its own weights) gets the tone sweep at its input rate in every input channel
    (``aliasing_sweep``); its input channels are read from a one-frame forward. Returns
    ``{stage, in_channels, stride, mean_db, near_nyquist_db, near_nyquist_frequency,
    per_frequency_db, without_anti_alias}``; ``without_anti_alias`` holds the same numbers
    for a copy with every ``Activation1d`` at the base rate (``anti_alias=False``), or None
    when the stage has no active anti-aliasing filters. The generator is not changed.
    """
    stages = getattr(generator, "stages", None)
    if not isinstance(stages, nn.ModuleList) or len(stages) == 0:
        raise TypeError(f"generator must have a non-empty .stages ModuleList (HiFiGANGenerator, "
                        f"BigVGANGenerator), got {type(generator).__name__}")
    if not -len(stages) <= stage < len(stages):
        raise ValueError(f"stage must index generator.stages ({len(stages)} stages), got {stage}")
    index = stage % len(stages)
    block = copy.deepcopy(stages[index]).eval()
    seen: list[int] = []
    hook = stages[index].register_forward_pre_hook(lambda m, args: seen.append(args[0].shape[1]))
    try:
        with torch.no_grad():
            parameter = next(generator.parameters())
            generator(torch.zeros(1, generator.num_mels, 1, dtype=parameter.dtype))
    finally:
        hook.remove()
    in_channels, stride = seen[0], int(block.stride)
    found = {"stage": index, "in_channels": in_channels, "stride": stride,
             **_sweep_summary(block, in_channels, stride, frequencies),
             "without_anti_alias": None}
    filters = [m for m in block.modules() if isinstance(m, Activation1d) and m.anti_alias]
    if filters:
        for module in filters:
            module.anti_alias = False
        found["without_anti_alias"] = _sweep_summary(block, in_channels, stride, frequencies)
    return found


def format_aliasing_table(rows: Sequence[dict]) -> str:
    """Markdown table: variant, sweep mean and the tone nearest 0.45 cycles per sample."""
    lines = ["| variant | aliasing, sweep mean (dB) | aliasing at ~0.45 fs_in (dB) |",
             "|---|---|---|"]
    for row in rows:
        lines.append(f"| {row['variant']} | {row['mean_db']:.1f} | {row['near_nyquist_db']:.1f} |")
    return "\n".join(lines)
