"""The ONNX export of the transposed layer is dense: no index scatter, memory linear in T.

Under export the overlap-add is written with slices, pads, reshapes and adds
(:mod:`upsampler.conv_transpose.kernels.dense`), which onnxruntime runs as plain tensor ops; an index
``ScatterND`` (what the in-place strided adds of eager mode become) is slow there.
"""

from __future__ import annotations

import collections
import resource
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from upsampler import ConvTranspose1d, HiFiGANGenerator
from upsampler.export import export_onnx, run_onnx

for _module in ("onnx", "onnxruntime", "onnxscript"):
    pytest.importorskip(_module)

import onnx  # noqa: E402  (after the skips above)

# index scatters and the index gathers / ranges that feed them
INDEX_OPS = {"ScatterND", "ScatterElements", "Scatter", "Gather", "GatherND", "GatherElements",
             "Range", "NonZero"}
ATOL = 1e-4  # onnxruntime sums in its own order
UNSEEN_LENGTHS = [2, 13, 61]  # the export example has 7 steps
LONG_OUTPUT = 100_000  # samples of output in the long-length run
# Peak resident memory the long run may add, in multiples of its output's bytes: linear
# formulations need a handful of output-sized buffers; a dense 0/1 scatter matrix would
# need T * L_out values (tens of GB here).
MEMORY_FACTOR = 64
STRIDE, DILATION, OUTPUT_PADDING = 3, 2, 1


def _layer() -> ConvTranspose1d:
    torch.manual_seed(0)
    return ConvTranspose1d(4, 3, 5, stride=STRIDE, padding=1, output_padding=OUTPUT_PADDING,
                           dilation=DILATION).eval()


def _generator() -> HiFiGANGenerator:
    torch.manual_seed(0)  # reduced width, hop 4 * 3 = 12, odd kernel overhang on stage 2
    return HiFiGANGenerator(
        upsample_rates=[4, 3], upsample_kernel_sizes=[8, 7], upsample_initial_channel=16,
        resblock="2", resblock_kernel_sizes=[3], resblock_dilation_sizes=[[1, 3]],
    ).eval()


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple]:
    folder = tmp_path_factory.mktemp("dense_onnx")
    layer, generator = _layer(), _generator()
    mel = torch.randn(2, generator.num_mels, 7)
    return {
        "layer": (layer, export_onnx(layer, folder / "layer.onnx", torch.randn(2, 4, 7))),
        "generator": (generator, export_onnx(generator, folder / "generator.onnx", mel)),
        "layer_lowered": (layer, export_onnx(layer, folder / "layer_ct.onnx",
                                             torch.randn(2, 4, 7), lowering="conv_transpose")),
        "generator_lowered": (generator, export_onnx(generator, folder / "generator_ct.onnx",
                                                     mel, lowering="conv_transpose")),
    }


@pytest.mark.parametrize("name", ["layer", "generator"])
def test_exported_graph_has_no_index_scatter(exported: dict[str, tuple], name: str) -> None:
    graph = onnx.load(str(exported[name][1])).graph
    ops = collections.Counter(node.op_type for node in graph.node)
    assert ops["MatMul"] >= 1 and ops["Pad"] >= 1  # the columns and the overlap-add are there
    assert not INDEX_OPS & set(ops), ops
    assert "ConvTranspose" not in ops  # our formulation, not lowered to the runtime's op
    if name == "layer":
        assert "Conv" not in ops


def test_opt_in_lowering_writes_onnx_conv_transpose_nodes(exported: dict[str, tuple]) -> None:
    """``lowering="conv_transpose"``: each transposed layer is one ONNX ConvTranspose node,
    none of our matrix product and pads; the default export has none (checked above)."""
    layer_ops = collections.Counter(
        node.op_type for node in onnx.load(str(exported["layer_lowered"][1])).graph.node)
    assert layer_ops == {"ConvTranspose": 1}
    generator, path = exported["generator_lowered"]
    ops = collections.Counter(node.op_type for node in onnx.load(str(path)).graph.node)
    assert ops["ConvTranspose"] == len(generator.ups) and "MatMul" not in ops


@pytest.mark.parametrize("name", ["layer", "generator", "layer_lowered", "generator_lowered"])
def test_onnxruntime_matches_torch_at_unseen_lengths(exported: dict[str, tuple], name: str) -> None:
    module, path = exported[name]
    channels = 4 if name.startswith("layer") else module.num_mels
    gen = torch.Generator().manual_seed(3)
    for length in UNSEEN_LENGTHS:
        x = torch.randn(3, channels, length, generator=gen)
        with torch.no_grad():
            if name.startswith("layer"):  # torch's own op as the reference
                expected = F.conv_transpose1d(x, module.weight, module.bias, STRIDE, 1,
                                              OUTPUT_PADDING, 1, DILATION)
            else:
                expected = module(x)
        torch.testing.assert_close(run_onnx(path, x), expected, rtol=0, atol=ATOL)


def test_long_input_runs_in_linear_memory(exported: dict[str, tuple]) -> None:
    layer, path = exported["layer"]
    length = LONG_OUTPUT // STRIDE
    x = torch.randn(1, 4, length)
    run_onnx(path, x[..., :100])  # load the runtime before taking the baseline
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    out = run_onnx(path, x)
    grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - before
    assert out.shape[-1] >= LONG_OUTPUT
    assert grown <= MEMORY_FACTOR * out.numel() * out.element_size(), grown
    with torch.no_grad():
        expected = F.conv_transpose1d(x, layer.weight, layer.bias, STRIDE, 1, OUTPUT_PADDING, 1,
                                      DILATION)
    torch.testing.assert_close(out, expected, rtol=0, atol=ATOL)
