"""The generator stage and its multi-receptive-field fusion (MRF), for HiFi-GAN and kin.

An ``UpsampleBlock`` is one generator stage, built from modules::

    (B, C_in, T) --activation--> upsample (stride) --> mrf --> (B, C_out, T * stride)

``UpsampleBlock.hifigan(...)`` and ``MRF.hifigan(...)`` build HiFi-GAN's: leaky ReLU(0.1),
an upsampler from ``make_upsampler`` (our ``ConvTranspose1d`` with padding and
output_padding from ``lengths.exact_padding`` by default, so the length is exactly
``T * stride`` for any stride and kernel) and the mean of ``ResBlock1`` / ``ResBlock2``.
Another model passes its own modules (BigVGAN: no activation, AMP blocks).
"""

from __future__ import annotations

from typing import Optional, Sequence

from torch import Tensor, nn

from upsampler.conv_transpose.module import TrimmedConvTranspose1d
from upsampler.layers.resblocks import LRELU_SLOPE, make_resblock
from upsampler.streaming import (
    ChainStream,
    ConvTransposeStream,
    MeanStream,
    Stream,
    StreamingModule,
    new_stream,
    register_stream,
)
from upsampler.layers.upsamplers import make_upsampler
from upsampler.layers.weight_norm import apply_weight_norm, init_normal_, remove_weight_norm
from upsampler.lengths import check_int, exact_padding

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


class MRF(StreamingModule):
    """Multi-receptive-field fusion: the mean of parallel residual blocks.

    ``forward`` sums ``resblocks[0](x) + resblocks[1](x) + ...`` in order, then divides
    by their number (the original's order of the sums).
    """

    def __init__(self, resblocks: Sequence[nn.Module]) -> None:
        super().__init__()
        if len(resblocks) == 0:
            raise ValueError("resblocks must list at least one block, got []")
        self.resblocks = nn.ModuleList(resblocks)

    @classmethod
    def hifigan(
        cls,
        channels: int,
        resblock: str = "1",
        resblock_kernel_sizes: Sequence[int] = DEFAULT_KERNEL_SIZES,
        resblock_dilation_sizes: Sequence[Sequence[int]] = DEFAULT_DILATION_SIZES,
    ) -> "MRF":
        """HiFi-GAN's MRF: ``resblocks[j]`` of type ``resblock`` ("1" or "2") with kernel
        ``resblock_kernel_sizes[j]`` and dilations ``resblock_dilation_sizes[j]``."""
        check_resblock_sizes(resblock_kernel_sizes, resblock_dilation_sizes)
        return cls([
            make_resblock(resblock, channels, k, d)
            for k, d in zip(resblock_kernel_sizes, resblock_dilation_sizes)
        ])

    def forward(self, x: Tensor) -> Tensor:
        """``(B, C, T) -> (B, C, T)``."""
        total = self.resblocks[0](x)
        for block in self.resblocks[1:]:
            total = total + block(x)
        return total / len(self.resblocks)

    def new_stream(self) -> Stream:
        return MeanStream([new_stream(block) for block in self.resblocks])

    def remove_weight_norm(self) -> None:
        """Fold weight norm into plain weights (outputs unchanged)."""
        remove_weight_norm(self)


def _trimmed_stream(layer: TrimmedConvTranspose1d) -> Stream:
    """Overlap-add with the trim as a crop: ``padding = left``, ``output_padding = left -
    right`` give the same length and samples (an ``output_padding`` torch would refuse at
    stride 1, which the stream's arithmetic does not mind)."""
    left, right = layer.trim
    return ConvTransposeStream(layer, left, left - right)


register_stream(TrimmedConvTranspose1d, _trimmed_stream)


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


class UpsampleBlock(StreamingModule):
    """One generator stage: ``activation`` -> ``upsample`` (``stride``) -> ``mrf``.

    ``activation`` may be ``None`` (BigVGAN has none before its upsampler). Submodules:
    ``activation`` (``nn.Identity`` when ``None``), ``upsample`` and ``mrf``.
    """

    def __init__(
        self,
        upsample: nn.Module,
        mrf: nn.Module,
        stride: int,
        activation: Optional[nn.Module] = None,
    ) -> None:
        super().__init__()
        self.stride = check_int("stride", stride, 1)
        self.activation = nn.Identity() if activation is None else activation
        self.upsample = upsample
        self.mrf = mrf

    @classmethod
    def hifigan(
        cls,
        in_channels: int,
        out_channels: int,
        stride: int,
        kernel_size: int,
        resblock: str = "1",
        resblock_kernel_sizes: Sequence[int] = DEFAULT_KERNEL_SIZES,
        resblock_dilation_sizes: Sequence[Sequence[int]] = DEFAULT_DILATION_SIZES,
        upsampler: str = TRANSPOSED,
    ) -> "UpsampleBlock":
        """HiFi-GAN's stage: ``leaky_relu(0.1)`` -> upsampler -> ``MRF.hifigan``.

        ``upsampler`` names an entry of ``upsampler.layers.UPSAMPLERS``; "transposed" is our
        ``ConvTranspose1d`` with ``exact_padding``, equal to HiFi-GAN's ``(k - u) // 2``
        when ``k - u`` is even.
        """
        upsample = build_upsampler(upsampler, in_channels, out_channels, stride, kernel_size)
        mrf = MRF.hifigan(out_channels, resblock, resblock_kernel_sizes, resblock_dilation_sizes)
        return cls(upsample, mrf, stride, nn.LeakyReLU(LRELU_SLOPE))

    def forward(self, x: Tensor) -> Tensor:
        """``(B, C_in, T) -> (B, C_out, T * stride)``."""
        return self.mrf(self.upsample(self.activation(x)))

    def new_stream(self) -> Stream:
        parts = (self.activation, self.upsample, self.mrf)
        return ChainStream([new_stream(part) for part in parts])

    def remove_weight_norm(self) -> None:
        """Fold weight norm into plain weights (outputs unchanged)."""
        remove_weight_norm(self)
