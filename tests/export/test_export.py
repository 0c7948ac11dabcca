"""TorchScript, ONNX and torch.export programs of ConvTranspose1d and a generator equal eager
at unseen lengths."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch
from torch import nn

from upsampler import ConvTranspose1d, HiFiGANGenerator
from upsampler.export import (
    Conv1dAs2d,
    MIN_EXPORT_LENGTH,
    export_onnx,
    export_program,
    export_torchscript,
    exportable,
    max_abs_error,
    run_onnx,
    run_program,
    run_torchscript,
    with_2d_convs,
)

EXPORT_LENGTH = 9  # the example length; every check below runs at other lengths
CHECK_LENGTHS = [1, 4, 23, 50]
CHECK_BATCH = 3  # the example has batch 2: the batch axis is dynamic too
# Bound for another runtime: onnxruntime's kernels sum in their own order
EXPORT_ATOL = 1e-4
NUM_MELS = 80
LAYER_IN, LAYER_OUT = 4, 6


def make_layer() -> ConvTranspose1d:
    torch.manual_seed(0)  # odd stride, k not a multiple of s, dilation, output_padding
    return ConvTranspose1d(LAYER_IN, LAYER_OUT, 7, 3, 2, 1, dilation=2).eval()


def make_generator() -> HiFiGANGenerator:
    """Small, with weight norm, a non-power-of-two hop (12) and both resblock kinds' path."""
    torch.manual_seed(0)
    return HiFiGANGenerator(
        upsample_rates=[4, 3], upsample_kernel_sizes=[8, 6], upsample_initial_channel=16,
        resblock="1", resblock_kernel_sizes=[3], resblock_dilation_sizes=[[1, 3]],
    ).eval()


def assert_matches_eager(run, module: nn.Module, channels: int,
                         lengths: list[int] = CHECK_LENGTHS) -> None:
    generator = torch.Generator().manual_seed(1)
    for length in lengths:
        x = torch.randn(CHECK_BATCH, channels, length, generator=generator)
        with torch.no_grad():
            expected = module(x)
        torch.testing.assert_close(run(x), expected, rtol=0, atol=EXPORT_ATOL)


def test_layer_torchscript(tmp_path: Path) -> None:
    layer = make_layer()
    path = export_torchscript(layer, tmp_path / "layer.pt", torch.randn(2, LAYER_IN, EXPORT_LENGTH),
                              "trace")
    assert_matches_eager(lambda x: run_torchscript(path, x), layer, LAYER_IN)


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")
def test_layer_refuses_torch_jit_script_and_writes_nothing(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="torch.jit.trace"):
        export_torchscript(make_layer(), tmp_path / "layer.pt",
                           torch.randn(2, LAYER_IN, EXPORT_LENGTH), "script")
    assert list(tmp_path.iterdir()) == []


def test_generator_torchscript_trace(tmp_path: Path) -> None:
    generator = make_generator()
    example = torch.randn(2, NUM_MELS, EXPORT_LENGTH)
    path = export_torchscript(generator, tmp_path / "generator.pt", example, "trace")
    assert_matches_eager(lambda x: run_torchscript(path, x), generator, NUM_MELS)


def test_exportable_folds_weight_norm_and_leaves_original_intact() -> None:
    generator = make_generator()
    plain = exportable(generator)
    names = [name for name, _ in plain.named_parameters()]
    assert not any("parametrizations" in name for name in names)
    assert "stages.0.upsample.weight" in names
    mel = torch.randn(2, NUM_MELS, 5)
    with torch.no_grad():
        torch.testing.assert_close(plain(mel), generator(mel))
    # the original keeps its weight norm and still runs (torch's remove_parametrizations on a
    # deep copy would delete `weight` from the class both share)
    assert any("parametrizations" in name for name, _ in generator.named_parameters())
    assert generator.conv_pre.weight.shape == (16, NUM_MELS, 7)


def test_export_rejects_bad_arguments(tmp_path: Path) -> None:
    layer = make_layer()
    with pytest.raises(ValueError, match="method must be one of"):
        export_torchscript(layer, tmp_path / "a.pt", torch.randn(2, LAYER_IN, 5), "compile")
    with pytest.raises(ValueError, match="batch >= 2"):
        export_torchscript(layer, tmp_path / "a.pt", torch.randn(1, LAYER_IN, 5))
    with pytest.raises(ValueError, match=r"\(B, C, T\)"):
        export_onnx(layer, tmp_path / "a.onnx", torch.randn(LAYER_IN, 5))
    with pytest.raises(ValueError, match=f"T >= {MIN_EXPORT_LENGTH}"):
        export_program(layer, tmp_path / "a.pt2", torch.randn(2, LAYER_IN, MIN_EXPORT_LENGTH - 1))
    with pytest.raises(TypeError, match="nn.Module"):
        exportable(lambda x: x)
    with pytest.raises(ValueError, match="differs from reference"):
        max_abs_error(torch.zeros(2), torch.zeros(3))
    assert list(tmp_path.iterdir()) == []


def test_failed_torchscript_save_leaves_no_partial_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def half_write(module: torch.jit.ScriptModule, path: str) -> None:
        Path(path).write_bytes(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(torch.jit, "save", half_write)
    with pytest.raises(OSError, match="disk full"):
        export_torchscript(make_layer(), tmp_path / "a.pt", torch.randn(2, LAYER_IN, EXPORT_LENGTH))
    assert list(tmp_path.iterdir()) == []


def test_layer_program(tmp_path: Path) -> None:
    """The ``.pt2`` runs any batch and any length from ``MIN_EXPORT_LENGTH`` up; a shorter
    input fails the program's shape guard (eager would run it). The generator's ``.pt2`` is
    checked by the export recipe's tests."""
    layer = make_layer()
    path = export_program(layer, tmp_path / "layer.pt2", torch.randn(2, LAYER_IN, EXPORT_LENGTH))
    assert [p.name for p in tmp_path.iterdir()] == ["layer.pt2"]  # no temporary left behind
    lengths = [length for length in CHECK_LENGTHS if length >= MIN_EXPORT_LENGTH]
    assert_matches_eager(lambda x: run_program(path, x), layer, LAYER_IN, lengths)
    with pytest.raises(Exception, match=f">= {MIN_EXPORT_LENGTH}"):
        run_program(path, torch.randn(2, LAYER_IN, MIN_EXPORT_LENGTH - 1))


def test_failed_program_save_leaves_no_partial_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def half_write(program: torch.export.ExportedProgram, path: Path) -> None:
        Path(path).write_bytes(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(torch.export, "save", half_write)
    with pytest.raises(OSError, match="disk full"):
        export_program(make_layer(), tmp_path / "a.pt2", torch.randn(2, LAYER_IN, EXPORT_LENGTH))
    assert list(tmp_path.iterdir()) == []


@pytest.fixture
def onnx_dir(tmp_path: Path) -> Path:
    """A fresh folder, skipping the test when the optional ONNX stack is not installed."""
    for module in ("onnx", "onnxruntime", "onnxscript"):
        pytest.importorskip(module)
    return tmp_path


def assert_dynamic_axes(path: Path) -> None:
    """Batch and time are named (symbolic) dimensions, channels a number."""
    import onnx

    model = onnx.load(str(path))
    dims = model.graph.input[0].type.tensor_type.shape.dim
    assert dims[0].dim_param and dims[2].dim_param and not dims[1].dim_param


def test_layer_onnx(onnx_dir: Path) -> None:
    layer = make_layer()
    path = export_onnx(layer, onnx_dir / "layer.onnx", torch.randn(2, LAYER_IN, EXPORT_LENGTH))
    assert [p.name for p in onnx_dir.iterdir()] == ["layer.onnx"]  # no temporary left behind
    assert_dynamic_axes(path)
    assert_matches_eager(lambda x: run_onnx(path, x), layer, LAYER_IN)


def test_generator_onnx(onnx_dir: Path) -> None:
    generator = make_generator()
    path = export_onnx(generator, onnx_dir / "generator.onnx",
                       torch.randn(2, NUM_MELS, EXPORT_LENGTH))
    assert_dynamic_axes(path)
    assert_matches_eager(lambda x: run_onnx(path, x), generator, NUM_MELS)
    mel = torch.randn(1, NUM_MELS, 6)
    assert run_onnx(path, mel).shape == (1, 1, 6 * 12)  # T * hop, hop = 4 * 3


def test_2d_convs_compute_the_same_generator() -> None:
    """The ONNX export's copy writes each plain Conv1d as a height-1 Conv2d: same numbers
    (torch's own Conv1d is the reference), every plain Conv1d replaced, subclasses kept."""
    torch.manual_seed(0)
    generator = exportable(HiFiGANGenerator(
        upsample_rates=[4, 3], upsample_kernel_sizes=[8, 6], upsample_initial_channel=16,
        resblock="1", resblock_kernel_sizes=[3], resblock_dilation_sizes=[[1, 3]],
        upsampler="subpixel"))
    plain = sum(type(m) is nn.Conv1d for m in generator.modules())
    subclassed = sum(isinstance(m, nn.Conv1d) and type(m) is not nn.Conv1d
                     for m in generator.modules())
    swapped = with_2d_convs(copy.deepcopy(generator))
    assert sum(isinstance(m, Conv1dAs2d) for m in swapped.modules()) == plain > 0
    assert sum(isinstance(m, nn.Conv1d) for m in swapped.modules()) == subclassed > 0
    mel = torch.randn(2, NUM_MELS, 9)
    with torch.no_grad():
        torch.testing.assert_close(swapped(mel), generator(mel), rtol=0, atol=1e-5)
