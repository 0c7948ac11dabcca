"""HiFi-GAN's multi-receptive-field fusion (MRF) and one upsampling stage built on it.

An ``UpsampleBlock`` is one generator stage::

    (B, C_in, T) --lrelu(0.1)--> upsampler(stride) --> MRF --> (B, C_out, T * stride)

where the upsampler comes from ``make_upsampler`` (our ``ConvTranspose1d`` with padding and
output_padding from ``lengths.exact_padding`` by default), so the length is exactly
``T * stride`` for any stride and kernel and nothing is cropped afterwards.
"""

from __future__ import annotations

from typing import Iterable, Sequence

import torch.nn.functional as F
from torch import Tensor, nn

from upsampler.layers.resblocks import (
    LRELU_SLOPE,
    apply_weight_norm,
    init_normal_,
    make_resblock,
    remove_weight_norm,
)
from upsampler.layers.conv_transpose import TrimmedConvTranspose1d
from upsampler.layers.upsamplers import make_upsampler
from upsampler.lengths import exact_padding

DEFAULT_KERNEL_SIZES = (3, 7, 11)  # HiFi-GAN V1/V2
DEFAULT_DILATION_SIZES = ((1, 3, 5), (1, 3, 5), (1, 3, 5))
TRANSPOSED = "transposed"


def has_exact_padding(kernel_size: int, stride: int) -> bool:
    """Whether ``lengths.exact_padding`` has a ``(padding, output_padding)`` pair."""
    try:
        exact_padding(kernel_size, stride)
    except ValueError:
        return False
    return True


def fuse_branches(resblocks: Iterable[nn.Module], x: Tensor) -> Tensor:
    """Mean of the branches, summed in the original's order: ``(B, C, T) -> (B, C, T)``."""
    total = None
    count = 0
    for block in resblocks:
        total = block(x) if total is None else total + block(x)
        count += 1
    if total is None:
        raise ValueError("fuse_branches needs at least one resblock")
    return total / count


def check_resblock_sizes(
    resblock_kernel_sizes: Sequence[int], resblock_dilation_sizes: Sequence[Sequence[int]]
) -> None:
    """One dilation list per kernel size, at least one branch."""
    if len(resblock_kernel_sizes) == 0:
        raise ValueError("resblock_kernel_sizes must list at least one kernel size, got []")
    if len(resblock_kernel_sizes) != len(resblock_dilation_sizes):
        raise ValueError(
            f"resblock_kernel_sizes and resblock_dilation_sizes must have the same length "
            f"(one dilation list per kernel), got {list(resblock_kernel_sizes)} and "
            f"{[list(d) for d in resblock_dilation_sizes]}"
        )


class MRF(nn.Module):
    """Multi-receptive-field fusion: the mean of parallel resblocks with different kernels.

    ``resblocks[j]`` has kernel ``resblock_kernel_sizes[j]`` and dilations
    ``resblock_dilation_sizes[j]``.
    """

    def __init__(
        self,
        channels: int,
        resblock: str = "1",
        resblock_kernel_sizes: Sequence[int] = DEFAULT_KERNEL_SIZES,
        resblock_dilation_sizes: Sequence[Sequence[int]] = DEFAULT_DILATION_SIZES,
    ) -> None:
        super().__init__()
        check_resblock_sizes(resblock_kernel_sizes, resblock_dilation_sizes)
        self.resblocks = nn.ModuleList(
            make_resblock(resblock, channels, k, d)
            for k, d in zip(resblock_kernel_sizes, resblock_dilation_sizes)
        )

    def forward(self, x: Tensor) -> Tensor:
        """``(B, C, T) -> (B, C, T)``."""
        return fuse_branches(self.resblocks, x)


def build_upsampler(
    upsampler: str, in_channels: int, out_channels: int, stride: int, kernel_size: int
) -> nn.Module:
    """``make_upsampler`` plus HiFi-GAN's treatment: normal(0, 0.01) init for the
    transposed conv (other kinds keep their own init, e.g. ICNR), weight norm on every conv.
    A transposed conv with no exact padding pair gets ``TrimmedConvTranspose1d`` instead.
    """
    if upsampler == TRANSPOSED and not has_exact_padding(kernel_size, stride):
        module: nn.Module = TrimmedConvTranspose1d(in_channels, out_channels, stride, kernel_size)
    else:
        module = make_upsampler(upsampler, in_channels, out_channels, stride, kernel_size)
    if upsampler == TRANSPOSED:
        init_normal_(module)
    return apply_weight_norm(module)


class UpsampleBlock(nn.Module):
    """One HiFi-GAN stage: ``leaky_relu(0.1)`` -> upsampler -> MRF.

    ``upsampler`` names an entry of ``upsampler.layers.UPSAMPLERS``; "transposed" is our
    ``ConvTranspose1d`` with ``exact_padding``, equal to HiFi-GAN's ``(k - u) // 2`` when
    ``k - u`` is even. Submodules: ``upsample`` and ``mrf``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stride: int,
        kernel_size: int,
        resblock: str = "1",
        resblock_kernel_sizes: Sequence[int] = DEFAULT_KERNEL_SIZES,
        resblock_dilation_sizes: Sequence[Sequence[int]] = DEFAULT_DILATION_SIZES,
        upsampler: str = TRANSPOSED,
    ) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.stride = stride
        self.upsample = build_upsampler(upsampler, in_channels, out_channels, stride, kernel_size)
        self.mrf = MRF(out_channels, resblock, resblock_kernel_sizes, resblock_dilation_sizes)

    def forward(self, x: Tensor) -> Tensor:
        """``(B, C_in, T) -> (B, C_out, T * stride)``."""
        x = F.leaky_relu(x, LRELU_SLOPE)
        x = self.upsample(x)
        return self.mrf(x)

    def remove_weight_norm(self) -> None:
        """Fold weight norm into plain weights (outputs unchanged)."""
        remove_weight_norm(self)
