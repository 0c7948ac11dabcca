"""HiFi-GAN's residual blocks and the weight-norm helpers every block and generator shares.

``ResBlock1`` and ``ResBlock2`` follow jik876/hifi-gan ``models.py`` so an original
checkpoint's ``convs1`` / ``convs2`` / ``convs`` keys load unchanged. Both keep the length:
``(B, C, T) -> (B, C, T)``, every convolution padded by ``(k * d - d) // 2``.
"""

from __future__ import annotations

from typing import Sequence, TypeVar

import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils import parametrizations, parametrize

from upsampler.layers.conv_transpose import ConvTranspose1d
from upsampler.lengths import check_int, effective_kernel_size, same_padding

LRELU_SLOPE = 0.1  # HiFi-GAN's slope inside every block
INIT_MEAN = 0.0
INIT_STD = 0.01  # HiFi-GAN's ``init_weights``: normal(0, 0.01)
WEIGHT_NORM_DIM = 0  # one gain per output channel (per input channel for transposed convs)

ModuleT = TypeVar("ModuleT", bound=nn.Module)
_CONVOLUTIONS = (nn.Conv1d, nn.ConvTranspose1d, ConvTranspose1d)


def init_normal_(conv: ModuleT) -> ModuleT:
    """Draw ``conv.weight`` from normal(0, 0.01), HiFi-GAN's ``init_weights``.

    Applied *before* weight norm, so the draw becomes the direction ``v`` and the gain
    ``g = ||v||``. (The original calls ``init_weights`` after ``weight_norm``, where writing
    ``m.weight.data`` is overwritten by the next forward; here the intended init takes effect.)
    """
    nn.init.normal_(conv.weight, INIT_MEAN, INIT_STD)
    return conv


def apply_weight_norm(module: ModuleT) -> ModuleT:
    """Weight-normalise every convolution in ``module`` (itself included) along dim 0.

    Uses ``torch.nn.utils.parametrizations.weight_norm``: state_dict keys become
    ``*.parametrizations.weight.original0`` (gain ``g``) and ``original1`` (direction ``v``).
    """
    for sub in list(module.modules()):
        if isinstance(sub, _CONVOLUTIONS) and not parametrize.is_parametrized(sub, "weight"):
            parametrizations.weight_norm(sub, name="weight", dim=WEIGHT_NORM_DIM)
    return module


def fold_parametrizations(module: nn.Module) -> None:
    """Replace each parametrized tensor of ``module`` itself by a plain parameter of its value.

    Not ``parametrize.remove_parametrizations``: that deletes the property from the
    ``Parametrized*`` class, which ``copy.deepcopy`` shares between a module and its copy,
    so folding the copy would break the original (and vice versa).
    """
    values = {name: getattr(module, name).detach().clone() for name in module.parametrizations}
    module.__class__ = module.__class__.__bases__[0]  # Parametrized<Cls> -> <Cls>
    del module._modules["parametrizations"]
    for name, value in values.items():
        module.register_parameter(name, nn.Parameter(value))


def remove_weight_norm(module: nn.Module) -> None:
    """Fold every weight norm in ``module`` into a plain ``weight`` (for inference).

    The folded weight is ``g * v / ||v||``, the tensor the forward already used, so
    outputs are unchanged. Modules without weight norm are left as they are; a deep copy
    can be folded without touching the module it was copied from.
    """
    for sub in list(module.modules()):
        if parametrize.is_parametrized(sub, "weight"):
            fold_parametrizations(sub)


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


class ResBlock1(nn.Module):
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

    def forward(self, x: Tensor) -> Tensor:
        """``(B, C, T) -> (B, C, T)``."""
        for conv1, conv2 in zip(self.convs1, self.convs2):
            xt = F.leaky_relu(x, LRELU_SLOPE)
            xt = conv1(xt)
            xt = F.leaky_relu(xt, LRELU_SLOPE)
            xt = conv2(xt)
            x = xt + x
        return x

    def remove_weight_norm(self) -> None:
        """Fold weight norm into plain weights (outputs unchanged)."""
        remove_weight_norm(self)


class ResBlock2(nn.Module):
    """HiFi-GAN's "2" block (V3): per dilation ``d``, lrelu -> conv(d), residual."""

    def __init__(
        self, channels: int, kernel_size: int = 3, dilation: Sequence[int] = (1, 3)
    ) -> None:
        super().__init__()
        check_int("channels", channels, 1)
        self.dilation = _check_dilations(dilation, kernel_size)
        self.kernel_size = kernel_size
        self.convs = nn.ModuleList(_same_conv(channels, kernel_size, d) for d in self.dilation)

    def forward(self, x: Tensor) -> Tensor:
        """``(B, C, T) -> (B, C, T)``."""
        for conv in self.convs:
            xt = F.leaky_relu(x, LRELU_SLOPE)
            xt = conv(xt)
            x = xt + x
        return x

    def remove_weight_norm(self) -> None:
        """Fold weight norm into plain weights (outputs unchanged)."""
        remove_weight_norm(self)


RESBLOCKS: dict[str, type[nn.Module]] = {"1": ResBlock1, "2": ResBlock2}


def make_resblock(
    resblock: str, channels: int, kernel_size: int, dilation: Sequence[int]
) -> nn.Module:
    """Build HiFi-GAN's block type ``resblock`` ("1" or "2", as in ``config.json``)."""
    if resblock not in RESBLOCKS:
        raise ValueError(f"resblock must be one of {sorted(RESBLOCKS)}, got {resblock!r}")
    return RESBLOCKS[resblock](channels, kernel_size, dilation)
