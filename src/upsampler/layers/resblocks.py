"""HiFi-GAN's residual blocks.

``ResBlock1`` and ``ResBlock2`` follow jik876/hifi-gan ``models.py`` so an original
checkpoint's ``convs1`` / ``convs2`` / ``convs`` keys load unchanged. Both keep the length:
``(B, C, T) -> (B, C, T)``, every convolution padded by ``(k * d - d) // 2``.

Both are a :class:`ResidualBlock`: a chain of residual units ``x = f(x) + x``, each ``f``
a sequence of the block's registered modules (``units()``); ``forward`` runs the units and
the streaming step (:mod:`upsampler.streaming`) chains their streams, so both read
the one list. BigVGAN's AMP blocks have the same shape with Snake activations.
"""

from __future__ import annotations

from typing import Sequence

from torch import Tensor, nn

from upsampler.streaming import ChainStream, ResidualStream, Stream, StreamingModule, new_stream
from upsampler.layers.weight_norm import apply_weight_norm, init_normal_, remove_weight_norm
from upsampler.lengths import check_int, effective_kernel_size, same_padding

LRELU_SLOPE = 0.1  # HiFi-GAN's slope inside every block


class ResidualBlock(StreamingModule):
    """Residual units in sequence: for each ``ops`` in ``units()``, ``x = ops(x) + x``.

    Subclasses register their modules as usual (so state_dict keys are theirs) and list
    each unit's modules in order in ``units()``; every unit must keep the length.
    """

    def units(self) -> list[list[nn.Module]]:
        """The modules of each residual unit, in the order they apply."""
        raise NotImplementedError(f"{type(self).__name__} must define units()")

    def forward(self, x: Tensor) -> Tensor:
        """``(B, C, T) -> (B, C, T)``."""
        for ops in self.units():
            xt = x
            for op in ops:
                xt = op(xt)
            x = xt + x
        return x

    def new_stream(self) -> Stream:
        return ChainStream([
            ResidualStream(ChainStream([new_stream(op) for op in ops])) for ops in self.units()
        ])

    def remove_weight_norm(self) -> None:
        """Fold weight norm into plain weights (outputs unchanged)."""
        remove_weight_norm(self)


def _check_dilations(dilation: Sequence[int], kernel_size: int) -> tuple[int, ...]:
    check_int("kernel_size", kernel_size, 1)
    if len(dilation) == 0:
        raise ValueError(f"dilation must list at least one dilation, got {dilation!r}")
    for d in dilation:
        check_int("dilation", d, 1)
        if (effective_kernel_size(kernel_size, d) - 1) % 2 != 0:
            raise ValueError(
                f"kernel_size={kernel_size} with dilation={d} spans an even number of "
                f"samples, so no symmetric padding keeps the length; use an odd kernel_size"
            )
    return tuple(dilation)


def _same_conv(channels: int, kernel_size: int, dilation: int) -> nn.Conv1d:
    """A length-keeping ``Conv1d``, weight drawn from normal(0, 0.01), weight-normalised."""
    conv = nn.Conv1d(
        channels, channels, kernel_size, 1, dilation=dilation,
        padding=same_padding(kernel_size, dilation),
    )
    return apply_weight_norm(init_normal_(conv))


class ResBlock1(ResidualBlock):
    """HiFi-GAN's "1" block: per dilation ``d``, lrelu -> conv(d) -> lrelu -> conv(1), residual.

    ``convs1[j]`` has dilation ``dilation[j]``, ``convs2[j]`` dilation 1 (the original has
    three of each for its three dilations).
    """

    def __init__(
        self, channels: int, kernel_size: int = 3, dilation: Sequence[int] = (1, 3, 5)
    ) -> None:
        super().__init__()
        check_int("channels", channels, 1)
        self.dilation = _check_dilations(dilation, kernel_size)
        self.kernel_size = kernel_size
        self.convs1 = nn.ModuleList(_same_conv(channels, kernel_size, d) for d in self.dilation)
        self.convs2 = nn.ModuleList(_same_conv(channels, kernel_size, 1) for _ in self.dilation)
        self.activation = nn.LeakyReLU(LRELU_SLOPE)

    def units(self) -> list[list[nn.Module]]:
        """Per dilation: ``[lrelu, convs1[j], lrelu, convs2[j]]``."""
        act = self.activation
        return [[act, conv1, act, conv2] for conv1, conv2 in zip(self.convs1, self.convs2)]


class ResBlock2(ResidualBlock):
    """HiFi-GAN's "2" block (V3): per dilation ``d``, lrelu -> conv(d), residual."""

    def __init__(
        self, channels: int, kernel_size: int = 3, dilation: Sequence[int] = (1, 3)
    ) -> None:
        super().__init__()
        check_int("channels", channels, 1)
        self.dilation = _check_dilations(dilation, kernel_size)
        self.kernel_size = kernel_size
        self.convs = nn.ModuleList(_same_conv(channels, kernel_size, d) for d in self.dilation)
        self.activation = nn.LeakyReLU(LRELU_SLOPE)

    def units(self) -> list[list[nn.Module]]:
        """Per dilation: ``[lrelu, convs[j]]``."""
        return [[self.activation, conv] for conv in self.convs]


RESBLOCKS: dict[str, type[nn.Module]] = {"1": ResBlock1, "2": ResBlock2}


def make_resblock(
    resblock: str, channels: int, kernel_size: int, dilation: Sequence[int]
) -> nn.Module:
    """Build HiFi-GAN's block type ``resblock`` ("1" or "2", as in ``config.json``)."""
    if resblock not in RESBLOCKS:
        raise ValueError(f"resblock must be one of {sorted(RESBLOCKS)}, got {resblock!r}")
    return RESBLOCKS[resblock](channels, kernel_size, dilation)
