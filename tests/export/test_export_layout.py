"""The ONNX export's blocked-layout form of HiFi-GAN's MRFs: same numbers, fewer reorders.

``with_blocked_residuals`` rewrites the export copy so onnxruntime's blocked (NCHWc) CPU
kernels keep the residual blocks in their layout; the graph onnxruntime optimises from it
has one reorder in and one out per MRF instead of one per convolution.
"""

from __future__ import annotations

import collections
import copy
from pathlib import Path

import pytest
import torch
from torch import nn

from upsampler import HiFiGANGenerator
from upsampler.export import exportable, export_onnx, run_onnx
from upsampler.export.onnx_layout import (
    BlockedMRF,
    Conv1dAs2d,
    IdentityConv2d,
    blocked_channels,
    with_2d_convs,
    with_blocked_residuals,
)

NUM_MELS = 80
EXPORT_FRAMES, CHECK_FRAMES, CHECK_BATCH = 7, [3, 12, 40], 3
ATOL = 1e-4  # onnxruntime sums in its own order
WIDE = 64  # stage widths 32 and 16: multiples of onnxruntime's channel block
NARROW = 16  # stage widths 8 and 4: not blocked by the runtime, left as they are


def make_generator(resblock: str, width: int = WIDE, rates: tuple[int, ...] = (4, 3)
                   ) -> HiFiGANGenerator:
    torch.manual_seed(0)
    dilations = [[1, 3]] if resblock == "1" else [[1, 2]]
    return HiFiGANGenerator(
        upsample_rates=list(rates), upsample_kernel_sizes=[2 * rate for rate in rates],
        upsample_initial_channel=width, resblock=resblock, resblock_kernel_sizes=[3, 5],
        resblock_dilation_sizes=dilations * 2,
    ).eval()


@pytest.mark.parametrize("resblock", ["1", "2"])
def test_blocked_copy_computes_the_same_generator(resblock: str) -> None:
    """Every MRF of a wide generator is wrapped, each unit opens with an identity conv, and
    the outputs equal the plain export copy's (the identity conv multiplies by 1.0)."""
    generator = exportable(make_generator(resblock))
    plain = with_2d_convs(copy.deepcopy(generator))
    blocked = with_blocked_residuals(copy.deepcopy(plain))
    assert sum(isinstance(m, BlockedMRF) for m in blocked.modules()) == len(generator.stages)
    units = sum(len(block.units()) for stage in generator.stages for block in stage.mrf.resblocks)
    calls = []
    for module in blocked.modules():
        if isinstance(module, IdentityConv2d):
            module.register_forward_hook(lambda *args: calls.append(1))
    mel = torch.randn(2, NUM_MELS, 9)
    with torch.no_grad():
        blocked(mel)
        # one before each residual unit's opening activation, one at each MRF's entry
        assert len(calls) == units + len(generator.stages)
        torch.testing.assert_close(blocked(mel), generator(mel))
        torch.testing.assert_close(blocked(mel), plain(mel), rtol=0, atol=0)


def test_identity_conv_returns_its_input_exactly() -> None:
    x = torch.randn(2, 32, 1, 50)
    assert torch.equal(IdentityConv2d(32)(x), x)


def test_conv_as_2d_takes_a_height_one_image() -> None:
    """``Conv1dAs2d`` on ``(B, C, 1, T)`` gives torch's ``Conv1d`` output with the height."""
    torch.manual_seed(0)
    conv = nn.Conv1d(16, 32, 5, dilation=3, padding=6)
    x = torch.randn(2, 16, 40)
    with torch.no_grad():
        image = Conv1dAs2d(conv)(x.unsqueeze(2))
        expected = conv(x)
    assert image.shape == (2, 32, 1, 40)
    torch.testing.assert_close(image.squeeze(2), expected)


def test_narrow_or_foreign_mrfs_are_left_alone() -> None:
    """Widths the runtime does not block, 1-D convs (before ``with_2d_convs``) and other
    modules are not wrapped."""
    narrow = with_2d_convs(exportable(make_generator("1", NARROW)))
    with_blocked_residuals(narrow)
    assert not any(isinstance(m, BlockedMRF) for m in narrow.modules())
    one_d = exportable(make_generator("1"))
    assert all(blocked_channels(stage.mrf) == 0 for stage in one_d.stages)
    assert blocked_channels(nn.LeakyReLU()) == 0


def _optimised_ops(path: Path, folder: Path) -> collections.Counter:
    """Node types of the graph onnxruntime optimises ``path`` into (``ORT_ENABLE_ALL``)."""
    import onnx
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.optimized_model_filepath = str(folder / f"{path.stem}.optimised.onnx")
    onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    graph = onnx.load(options.optimized_model_filepath).graph
    return collections.Counter(node.op_type for node in graph.node)


@pytest.mark.parametrize("resblock", ["1", "2"])
def test_onnxruntime_keeps_the_residual_blocks_blocked(tmp_path: Path, resblock: str) -> None:
    """In the runtime's optimised graph the only LeakyRelu nodes left standing are the ones
    outside the MRF (before the upsampler and before conv_post; the rest are fused into
    convolutions) and the MRF costs one reorder in and one out (plus conv_pre's and
    conv_post's pairs); without the rewrite each residual unit leaves a LeakyRelu standing
    and a reorder pair around it. Outputs match eager at unseen lengths and batch. One
    stage keeps the export short."""
    for module in ("onnx", "onnxruntime", "onnxscript"):
        pytest.importorskip(module)
    generator = make_generator(resblock, rates=(4,))
    blocked = export_onnx(generator, tmp_path / "blocked.onnx",
                          torch.randn(2, NUM_MELS, EXPORT_FRAMES))
    ops = _optimised_ops(blocked, tmp_path)
    if ops["ReorderInput"] == 0:
        pytest.skip("this onnxruntime build has no blocked-layout kernels (not x86)")
    stages = len(generator.stages)
    assert ops["LeakyRelu"] == stages + 1, ops
    assert ops["ReorderInput"] <= stages + 2 and ops["ReorderOutput"] <= stages + 2, ops
    gen = torch.Generator().manual_seed(1)
    for frames in CHECK_FRAMES:
        mel = torch.randn(CHECK_BATCH, NUM_MELS, frames, generator=gen)
        with torch.no_grad():
            expected = generator(mel)
        torch.testing.assert_close(run_onnx(blocked, mel), expected, rtol=0, atol=ATOL)


def test_export_rejects_a_non_bool_switch(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="blocked_residuals must be a bool"):
        export_onnx(make_generator("2", NARROW), tmp_path / "a.onnx",
                    torch.randn(2, NUM_MELS, EXPORT_FRAMES), blocked_residuals="yes")
    assert list(tmp_path.iterdir()) == []
