"""The seed blog's hand-worked examples: kernel [1, 1, 1] on input [1, 1, 1, 1]."""

import pytest
import torch

from upsampler import ConvTranspose1d
from upsampler.conv_transpose.functional import conv_transpose1d


@pytest.mark.parametrize(
    ("stride", "padding", "expected"),
    [
        (1, 0, [1, 2, 3, 3, 2, 1]),
        (1, 1, [2, 3, 3, 2]),
        (2, 1, [1, 2, 1, 2, 1, 2, 1]),
    ],
)
def test_seed_examples(stride: int, padding: int, expected: list[int]) -> None:
    x = torch.ones(1, 1, 4)
    w = torch.ones(1, 1, 3)
    out = conv_transpose1d(x, w, stride=stride, padding=padding)
    assert out.flatten().tolist() == expected
    layer = ConvTranspose1d(1, 1, 3, stride, padding, bias=False)
    with torch.no_grad():
        layer.weight.fill_(1.0)
    assert layer(x).flatten().tolist() == expected
