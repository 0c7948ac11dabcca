"""The ratio-2 block matrices against torch's own convolutions, and the blocked helpers."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from upsampler.layers.kaiser import (
    block_product,
    down_block_matrix,
    kaiser_sinc_filter1d,
    replicate_pad,
    up_block_matrix,
)

TAPS = 12
UP_OVERLAP, DOWN_OVERLAP = 5, 10  # inputs a block reads beyond its own: 6 - 1 and 12 - 2
CUT = 10  # torch's transposed conv output n + 10 is our first block's sample n


def random_filter() -> torch.Tensor:
    torch.manual_seed(0)
    return torch.randn(1, 1, TAPS, dtype=torch.float64)


@pytest.mark.parametrize("fresh", [True, False])
@pytest.mark.parametrize("block", [5, 7, 16])
def test_up_blocks_equal_torch_conv_transpose(block: int, fresh: bool) -> None:
    taps, rows = random_filter(), 5
    signal = torch.randn(rows * block, dtype=torch.float64)
    with torch.no_grad():
        up = block_product(signal.view(rows, block), up_block_matrix(taps, block), UP_OVERLAP,
                           fresh)
    assert up.shape == (rows, 2 * block)
    expected = F.conv_transpose1d(signal.view(1, 1, -1), 2 * taps, stride=2).view(-1)
    valid = 2 * (rows - 1) * block  # the last row has no successor
    torch.testing.assert_close(up.reshape(-1)[:valid], expected[CUT : CUT + valid])
    assert torch.equal(up[-1], torch.zeros(2 * block, dtype=torch.float64))


@pytest.mark.parametrize("fresh", [True, False])
@pytest.mark.parametrize("block", [5, 7, 16])
def test_down_blocks_equal_torch_strided_conv(block: int, fresh: bool) -> None:
    taps, rows = random_filter(), 5
    signal = torch.randn(rows * 2 * block, dtype=torch.float64)
    with torch.no_grad():
        down = block_product(signal.view(rows, 2 * block), down_block_matrix(taps, block),
                             DOWN_OVERLAP, fresh)
    assert down.shape == (rows, block)
    expected = F.conv1d(signal.view(1, 1, -1), taps, stride=2).view(-1)
    valid = (rows - 1) * block
    torch.testing.assert_close(down.reshape(-1)[:valid], expected[:valid])


@pytest.mark.parametrize("fresh", [True, False])
def test_replicate_pad_equals_torch(fresh: bool) -> None:
    x = torch.randn(2, 3, 7)
    torch.testing.assert_close(replicate_pad(x, 5, 9, fresh), F.pad(x, (5, 9), mode="replicate"))


def test_block_matrices_reject_other_filters() -> None:
    with pytest.raises(ValueError, match="filter must hold 12 taps"):
        up_block_matrix(kaiser_sinc_filter1d(0.25, 0.3, 10), 16)
    with pytest.raises(ValueError, match="block must be >= 5"):
        down_block_matrix(random_filter(), 4)
