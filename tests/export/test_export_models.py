"""Every generator family exports to ONNX: each HiFi-GAN upsampler kind, a planned hop, BigVGAN.

Reduced-width models (a dynamo export of full V1 takes about a minute here; the full matrix
is the export recipe's job, see configs/export.yaml). Each file has dynamic batch and time
axes: it is exported at batch 2 and 7 frames and checked at batch 3 and three other lengths.
"""

from __future__ import annotations

import collections
from pathlib import Path

import pytest
import torch
from torch import nn

from upsampler import BigVGANGenerator, HiFiGANGenerator
from upsampler.export import export_onnx, run_onnx
from upsampler.lengths import kernel_sizes_for_rates, plan_upsample_rates

for _module in ("onnx", "onnxruntime", "onnxscript"):
    pytest.importorskip(_module)

import onnx  # noqa: E402  (after the skips above)

ATOL = 1e-4  # onnxruntime sums in its own order
EXPORT_FRAMES, CHECK_FRAMES, CHECK_BATCH = 7, [3, 12, 40], 3
SCATTER_OPS = {"ScatterND", "ScatterElements", "Scatter"}
TINY = dict(upsample_initial_channel=16, resblock="2", resblock_kernel_sizes=[3],
            resblock_dilation_sizes=[[1, 3]])
UPSAMPLER_KINDS = ["transposed", "nearest_conv", "linear_conv", "subpixel", "subpixel_icnr"]
ANY_HOP = 300  # configs/audio/24k_hop300.yaml, planned like model=hifigan_any_hop


def build(family: str) -> nn.Module:
    torch.manual_seed(0)
    if family == "any_hop":
        rates = plan_upsample_rates(ANY_HOP)
        model: nn.Module = HiFiGANGenerator(
            upsample_rates=rates, upsample_kernel_sizes=kernel_sizes_for_rates(rates), **TINY)
    elif family == "bigvgan":
        model = BigVGANGenerator(upsample_rates=[4, 2], upsample_kernel_sizes=[8, 4],
                                 upsample_initial_channel=8, resblock_kernel_sizes=[3],
                                 resblock_dilation_sizes=[[1, 3]])
    else:
        model = HiFiGANGenerator(upsample_rates=[4, 3], upsample_kernel_sizes=[8, 6],
                                 upsampler=family, **TINY)
    return model.eval()


@pytest.mark.parametrize("family", UPSAMPLER_KINDS + ["any_hop", "bigvgan"])
def test_every_family_exports_and_matches_eager(tmp_path: Path, family: str) -> None:
    model = build(family)
    path = export_onnx(model, tmp_path / f"{family}.onnx",
                       torch.randn(2, model.num_mels, EXPORT_FRAMES))
    ops = collections.Counter(node.op_type for node in onnx.load(str(path)).graph.node)
    assert not SCATTER_OPS & set(ops), ops
    gen = torch.Generator().manual_seed(1)
    for frames in CHECK_FRAMES:
        mel = torch.randn(CHECK_BATCH, model.num_mels, frames, generator=gen)
        with torch.no_grad():
            expected = model(mel)
        out = run_onnx(path, mel)
        assert out.shape == (CHECK_BATCH, 1, frames * model.hop_length)
        torch.testing.assert_close(out, expected, rtol=0, atol=ATOL)
