"""The strided-block overlap-add of :mod:`upsampler.conv_transpose.kernels.blocks` against torch's op."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from upsampler.conv_transpose import dispatch
from upsampler.conv_transpose.kernels import blocks
from upsampler.conv_transpose.functional import conv_transpose1d
from upsampler.lengths import exact_padding


@pytest.mark.parametrize("kernel_size, stride", [(16, 8), (10, 5), (4, 2)])
@pytest.mark.parametrize("length", [3, 40])  # 3: the batch is folded into the product
def test_runs_added_into_the_covering_run_match_torch(
    kernel_size: int, stride: int, length: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # HiFi-GAN's layers (exact padding, L_out = T * stride) on the strided-block path, where
    # the short runs go through the covering run's columns; float64, every gradient
    taken = []
    for name in ("add_runs_into_cover", "copy_runs_from_cover"):
        def spy(*args: object, _original=getattr(blocks, name), _name=name) -> None:
            taken.append(_name)
            _original(*args)
        monkeypatch.setattr(blocks, name, spy)
    padding, output_padding = exact_padding(kernel_size, stride)
    torch.manual_seed(kernel_size * length)
    x = torch.randn(2, 6, length, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(6, 8, kernel_size, dtype=torch.float64, requires_grad=True)
    bias = torch.randn(8, dtype=torch.float64, requires_grad=True)
    args = (stride, padding, output_padding)
    with dispatch.force(forward="blocks", backward="blocks"):
        ours = conv_transpose1d(x, weight, bias, *args)
    expected = F.conv_transpose1d(x, weight, bias, *args)
    torch.testing.assert_close(ours, expected)
    grad_output = torch.randn_like(expected)
    with dispatch.force(forward="blocks", backward="blocks"):
        got = torch.autograd.grad(ours, (x, weight, bias), grad_output)
    for got_grad, want in zip(got, torch.autograd.grad(expected, (x, weight, bias), grad_output)):
        torch.testing.assert_close(got_grad, want)
    assert taken == ["add_runs_into_cover", "copy_runs_from_cover"]
