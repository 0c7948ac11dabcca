"""NaN and Inf reach the same output positions as in torch's op, on every formulation.

A non-finite input sample must reach only the positions ``t * stride + k * dilation - padding``
it reaches in ``torch.nn.functional.conv_transpose1d``; a formulation that multiplies it by
an explicit zero for other positions (a 0/1 scatter matrix) spreads NaN over the whole
item. Each test forces one formulation, puts one NaN, one +Inf and one -Inf into the input
(or into the output gradient) and compares the ``isnan`` and ``isinf`` masks of the output,
the input gradient and the weight gradient with torch's. The products and the sets of terms
summed are the same as torch's, and summation order cannot change whether a sum is NaN or
infinite (only overflow could, and the values here are small), so the masks must be equal.
"""

from __future__ import annotations

import contextlib
import zlib
from dataclasses import dataclass
from typing import Callable, Optional

import pytest
import torch
import torch.nn.functional as F

import upsampler.conv_transpose.functional as functional_module
from upsampler.conv_transpose import dispatch
from upsampler.conv_transpose.functional import conv_transpose1d

PATHS = ["matrix", "index", "blocks", "depthwise", "windows", "dense"]
# the function each forced path must run, forward and backward (the dispatch's kernel names)
PATH_FUNCTIONS = {
    "matrix": ("matrix_scatter", "matrix_gather"),
    "index": ("index_scatter", "index_gather"),
    "blocks": ("block_scatter", "block_gather"),
    "depthwise": ("depthwise_forward", "block_gather"),
    "windows": ("windows_forward", "windows_backward"),
    "dense": ("dense_scatter", "dense_gather"),
}
SPIED = sorted({name for pair in PATH_FUNCTIONS.values() for name in pair})


@dataclass(frozen=True)
class Geometry:
    name: str
    batch: Optional[int]  # None: an unbatched (C_in, T) input
    in_channels: int
    out_channels: int
    length: int
    kernel_size: int
    stride: int
    padding: int = 0
    output_padding: int = 0
    dilation: int = 1
    groups: int = 1

    def __str__(self) -> str:
        return self.name

    @property
    def depthwise(self) -> bool:
        return self.groups == self.in_channels == self.out_channels


GEOMETRIES = [
    Geometry("overlap", 1, 2, 3, 8, 4, 2, padding=1),
    Geometry("stride-beyond-kernel", 2, 2, 3, 6, 3, 5),
    Geometry("dilation-output-padding", 1, 3, 2, 7, 3, 2, padding=1, output_padding=1, dilation=3),
    Geometry("large-padding", 2, 2, 2, 6, 5, 3, padding=4, output_padding=2),
    Geometry("groups", 2, 4, 6, 6, 4, 2, padding=1, groups=2),
    Geometry("depthwise", 2, 3, 3, 7, 5, 2, padding=1, output_padding=1, groups=3),
    Geometry("hifigan-cover", 1, 2, 3, 6, 16, 8, padding=4),
    Geometry("folded-batch", 2, 2, 4, 3, 8, 4, padding=2),
    Geometry("unbatched", None, 2, 3, 8, 4, 2, padding=1),
    Geometry("unbatched-dilated-groups", None, 4, 2, 6, 3, 2, output_padding=1, dilation=2, groups=2),
]


# every path on every geometry it serves (the depthwise kernel serves one channel per group)
CASES = [pytest.param(g, p, id=f"{g}-{p}") for g in GEOMETRIES for p in PATHS
         if p != "depthwise" or g.depthwise]


def _forced(path: str) -> contextlib.AbstractContextManager[None]:
    """Force one formulation, forward and backward, for every shape (windows in several chunks)."""
    backward = "blocks" if path == "depthwise" else path
    return dispatch.force(forward=path, backward=backward, window_buffer_elements=40)


@pytest.fixture
def called(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Names of the spied formulation functions, in call order."""
    record: list[str] = []
    for name in SPIED:
        original = getattr(functional_module, name)

        def spy(*args: object, _original: Callable = original, _name: str = name) -> object:
            record.append(_name)
            return _original(*args)

        monkeypatch.setattr(functional_module, name, spy)
    return record


def _tensors(geometry: Geometry, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(zlib.crc32(geometry.name.encode()))
    batch = geometry.batch or 1
    x = torch.randn(batch, geometry.in_channels, geometry.length, generator=gen, dtype=dtype)
    weight = torch.randn(geometry.in_channels, geometry.out_channels // geometry.groups,
                         geometry.kernel_size, generator=gen, dtype=dtype)
    bias = torch.randn(geometry.out_channels, generator=gen, dtype=dtype)
    return (x if geometry.batch else x[0]), weight, bias


def _poison(t: torch.Tensor) -> torch.Tensor:
    """A copy with NaN in the middle of the first item and channel, +Inf and -Inf on two
    neighbouring steps of the last item and channel (positions that see both get NaN)."""
    t = t.clone()
    view = t if t.dim() == 3 else t.unsqueeze(0)
    view[0, 0, view.shape[2] // 2] = float("nan")
    view[-1, -1, 0] = float("inf")
    view[-1, -1, 1] = float("-inf")
    return t


def _conv_args(geometry: Geometry) -> dict[str, int]:
    return {"stride": geometry.stride, "padding": geometry.padding,
            "output_padding": geometry.output_padding, "dilation": geometry.dilation,
            "groups": geometry.groups}


def _assert_same_pattern(got: torch.Tensor, want: torch.Tensor, what: str) -> None:
    assert got.shape == want.shape, what
    assert torch.equal(torch.isnan(got), torch.isnan(want)), f"{what}: NaN positions differ"
    assert torch.equal(torch.isinf(got), torch.isinf(want)), f"{what}: Inf positions differ"
    assert torch.equal(torch.sign(got[torch.isinf(got)]), torch.sign(want[torch.isinf(want)])), what


def _partly_finite(t: torch.Tensor) -> bool:
    finite = int(torch.isfinite(t).sum())
    return 0 < finite < t.numel()


def _check_path(path: str, called: list[str], backward: bool) -> None:
    assert called == [PATH_FUNCTIONS[path][backward]] or (
        path == "matrix" and called[0] == PATH_FUNCTIONS[path][backward]
    ), called


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=str)
@pytest.mark.parametrize(("geometry", "path"), CASES)
def test_non_finite_input_reaches_the_positions_torch_reaches(
    geometry: Geometry, dtype: torch.dtype, path: str, called: list[str]
) -> None:
    x, weight, bias = _tensors(geometry, dtype)
    x = _poison(x)
    ours_x, ours_w = x.clone().requires_grad_(), weight.clone().requires_grad_()
    with _forced(path):
        ours = conv_transpose1d(ours_x, ours_w, bias, **_conv_args(geometry))
    _check_path(path, called, backward=False)
    want_x, want_w = x.clone().requires_grad_(), weight.clone().requires_grad_()
    expected = F.conv_transpose1d(want_x, want_w, bias, **_conv_args(geometry))
    assert _partly_finite(expected)  # a spread over the whole output would differ
    assert torch.isinf(expected).any() and torch.isnan(expected).any()
    _assert_same_pattern(ours, expected, "output")
    finite = torch.isfinite(expected)
    torch.testing.assert_close(ours[finite], expected[finite])
    # a finite output gradient: the weight gradient sees the non-finite input samples
    grad_output = torch.randn_like(expected)
    with _forced(path):
        got_x, got_w = torch.autograd.grad(ours, (ours_x, ours_w), grad_output)
    (want_gx,) = torch.autograd.grad(expected, want_x, grad_output)
    _assert_same_pattern(got_x, want_gx, "input gradient")
    # Weight gradient: torch's float32 CPU backward skips the taps of step t that fall outside
    # the output, its float64 one multiplies them by zero (Inf * 0 = NaN) as every formulation
    # here does (x @ gathered columns); the reference is the float64 one.
    want_w64 = weight.double().requires_grad_()
    expected64 = F.conv_transpose1d(x.double(), want_w64, bias.double(), **_conv_args(geometry))
    (want_gw,) = torch.autograd.grad(expected64, want_w64, grad_output.double())
    _assert_same_pattern(got_w, want_gw, "weight gradient")


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=str)
@pytest.mark.parametrize(("geometry", "path"), CASES)
def test_non_finite_output_gradient_reaches_the_positions_torch_reaches(
    geometry: Geometry, dtype: torch.dtype, path: str, called: list[str]
) -> None:
    x, weight, bias = _tensors(geometry, dtype)
    ours_x, ours_w = x.clone().requires_grad_(), weight.clone().requires_grad_()
    with _forced(path):
        ours = conv_transpose1d(ours_x, ours_w, bias, **_conv_args(geometry))
    want_x, want_w = x.clone().requires_grad_(), weight.clone().requires_grad_()
    expected = F.conv_transpose1d(want_x, want_w, bias, **_conv_args(geometry))
    grad_output = _poison(torch.randn_like(expected))
    del called[:]
    with _forced(path):
        got = torch.autograd.grad(ours, (ours_x, ours_w), grad_output)
    _check_path(path, called, backward=True)
    want = torch.autograd.grad(expected, (want_x, want_w), grad_output)
    assert _partly_finite(want[0])
    for what, g, w in zip(("input gradient", "weight gradient"), got, want):
        _assert_same_pattern(g, w, what)
        finite = torch.isfinite(w)
        torch.testing.assert_close(g[finite], w[finite])
