"""BigVGAN's anti-aliased multi-periodicity (AMP) residual blocks.

Like HiFi-GAN's ``ResBlock1`` / ``ResBlock2`` with the leaky ReLUs replaced by anti-aliased
Snake activations (``Activation1d``). Submodule names follow BigVGAN so its checkpoints load:
``convs1`` / ``convs2`` (``AMPBlock1``) or ``convs`` (``AMPBlock2``), and ``activations``,
where in ``AMPBlock1`` ``activations[2n]`` precedes ``convs1[n]`` and ``activations[2n + 1]``
precedes ``convs2[n]``. Every convolution keeps the length: ``(B, C, T) -> (B, C, T)``.
Both are a ``ResidualBlock`` (the units listed once, for ``forward`` and streaming).
"""

from __future__ import annotations

from typing import Sequence

from torch import nn

from upsampler.layers.activation1d import Activation1d
from upsampler.layers.resblocks import ResidualBlock, _check_dilations, _same_conv
from upsampler.layers.snake import make_snake
from upsampler.lengths import check_int


def _activations(
    count: int, channels: int, activation: str, snake_logscale: bool, anti_alias: bool
) -> nn.ModuleList:
    return nn.ModuleList(
        Activation1d(make_snake(activation, channels, snake_logscale), anti_alias=anti_alias)
        for _ in range(count)
    )


class AMPBlock1(ResidualBlock):
    """Per dilation ``d``: act -> conv(k, d) -> act -> conv(k, 1), residual add."""

    def __init__(
        self,
        channels: int,
        kernel_size: int = 3,
        dilation: Sequence[int] = (1, 3, 5),
        activation: str = "snake",
        snake_logscale: bool = False,
        anti_alias: bool = True,
    ) -> None:
        super().__init__()
        check_int("channels", channels, 1)
        self.dilation = _check_dilations(dilation, kernel_size)
        self.kernel_size = kernel_size
        self.convs1 = nn.ModuleList(_same_conv(channels, kernel_size, d) for d in self.dilation)
        self.convs2 = nn.ModuleList(_same_conv(channels, kernel_size, 1) for _ in self.dilation)
        self.activations = _activations(
            2 * len(self.dilation), channels, activation, snake_logscale, anti_alias
        )

    def units(self) -> list[list[nn.Module]]:
        """Per dilation ``n``: ``[activations[2n], convs1[n], activations[2n + 1], convs2[n]]``."""
        acts = list(self.activations)
        return [
            [acts[2 * n], conv1, acts[2 * n + 1], conv2]
            for n, (conv1, conv2) in enumerate(zip(self.convs1, self.convs2))
        ]


class AMPBlock2(ResidualBlock):
    """Per dilation ``d``: act -> conv(k, d), residual add."""

    def __init__(
        self,
        channels: int,
        kernel_size: int = 3,
        dilation: Sequence[int] = (1, 3, 5),
        activation: str = "snake",
        snake_logscale: bool = False,
        anti_alias: bool = True,
    ) -> None:
        super().__init__()
        check_int("channels", channels, 1)
        self.dilation = _check_dilations(dilation, kernel_size)
        self.kernel_size = kernel_size
        self.convs = nn.ModuleList(_same_conv(channels, kernel_size, d) for d in self.dilation)
        self.activations = _activations(
            len(self.dilation), channels, activation, snake_logscale, anti_alias
        )

    def units(self) -> list[list[nn.Module]]:
        """Per dilation ``n``: ``[activations[n], convs[n]]``."""
        return [[act, conv] for act, conv in zip(self.activations, self.convs)]


AMP_BLOCKS: dict[str, type[nn.Module]] = {"1": AMPBlock1, "2": AMPBlock2}


def make_amp_block(
    resblock: str,
    channels: int,
    kernel_size: int,
    dilation: Sequence[int],
    activation: str = "snake",
    snake_logscale: bool = False,
    anti_alias: bool = True,
) -> nn.Module:
    """BigVGAN's block type ``resblock`` ("1": ``AMPBlock1``, "2": ``AMPBlock2``)."""
    if resblock not in AMP_BLOCKS:
        raise ValueError(f"resblock must be one of {sorted(AMP_BLOCKS)}, got {resblock!r}")
    return AMP_BLOCKS[resblock](
        channels, kernel_size, dilation, activation, snake_logscale, anti_alias
    )
