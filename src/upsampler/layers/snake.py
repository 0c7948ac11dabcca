"""Snake activations (Ziyin et al. 2020), per channel, as BigVGAN uses them.

``Snake``:     ``x + 1 / (a + eps) * sin(a * x) ** 2``
``SnakeBeta``: ``x + 1 / (b + eps) * sin(a * x) ** 2``  (frequency ``a`` and magnitude ``b``)

``a`` and ``b`` hold one value per channel. With ``alpha_logscale=True`` the parameters store
``log a`` / ``log b``, initialised to 0 (so ``a = b = 1``); otherwise they store ``a`` / ``b``,
initialised to ``alpha``. Parameter names ``alpha`` / ``beta`` match BigVGAN's checkpoints.
Every function is elementwise per channel, so ``(B, C, T) -> (B, C, T)`` for any ``T``: the
anti-aliased ``Activation1d`` runs it on twice the samples, and it streams pointwise.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from upsampler.conv_transpose.capture import is_capturing
from upsampler.streaming import Pointwise
from upsampler.lengths import check_int

NO_DIV_BY_ZERO = 1e-9  # BigVGAN's eps in 1 / (a + eps)


def in_place_allowed(x: Tensor, a: Tensor, b: Tensor) -> bool:
    """True when in-place ops on fresh intermediates of ``x``, ``a``, ``b`` are safe: autograd
    records none of them and no tracer, compiler or exporter sees the graph (an exported
    in-place write of a slice becomes a scatter)."""
    if not torch.jit.is_scripting():
        if is_capturing():
            return False
        recording = x.requires_grad or a.requires_grad or b.requires_grad
        return not (torch.is_grad_enabled() and recording)
    return False


def snake_function(x: Tensor, frequency: Tensor, inverse_magnitude: Tensor) -> Tensor:
    """``x + inverse_magnitude * sin(frequency * x)^2``; the per-channel factors ``(1, C, 1)``.

    Four passes over ``x`` and two allocations when nothing needs a gradient (``sin`` and
    the square in place on the product, then one fused ``addcmul``); out of place when
    autograd records, and when tracing or scripting for export.
    """
    if not in_place_allowed(x, frequency, inverse_magnitude):
        return torch.addcmul(x, torch.sin(x * frequency).square(), inverse_magnitude)
    wave = torch.mul(x, frequency).sin_().square_()
    return torch.addcmul(x, wave, inverse_magnitude)


def snake_(x: Tensor, frequency: Tensor, inverse_magnitude: Tensor) -> Tensor:
    """``snake_function`` written into ``x``, for a caller that owns ``x`` and records no
    autograd: one temporary instead of two."""
    wave = torch.mul(x, frequency).sin_().square_()
    return x.addcmul_(wave, inverse_magnitude)


class _SnakeFamily(Pointwise):
    """What Snake and SnakeBeta share: ``alpha``, its log-scale option and the forward on
    their ``factors()``."""

    def __init__(self, in_features: int, alpha: float, alpha_logscale: bool) -> None:
        super().__init__()
        self.writes_in_place = True  # forward takes in_place (read by Activation1d)
        self.in_features = check_int("in_features", in_features, 1)
        self.alpha_logscale = bool(alpha_logscale)
        self.no_div_by_zero = NO_DIV_BY_ZERO  # an attribute so TorchScript reads it
        self.initial = 0.0 if self.alpha_logscale else float(alpha)
        self.alpha = nn.Parameter(torch.full((in_features,), self.initial))

    def factors(self) -> tuple[Tensor, Tensor]:
        """The frequency and inverse magnitude, each ``(1, C, 1)``."""
        raise NotImplementedError

    def forward(self, x: Tensor, in_place: bool = False) -> Tensor:
        """``(B, C, T) -> (B, C, T)``; ``in_place=True`` writes into ``x`` when nothing
        records autograd (for a caller that owns ``x``, such as ``Activation1d``)."""
        frequency, inverse_magnitude = self.factors()
        if in_place and in_place_allowed(x, frequency, inverse_magnitude):
            return snake_(x, frequency, inverse_magnitude)
        return snake_function(x, frequency, inverse_magnitude)

    def extra_repr(self) -> str:
        return f"{self.in_features}, alpha_logscale={self.alpha_logscale}"


class Snake(_SnakeFamily):
    """``x + 1 / (a + 1e-9) * sin(a x)^2`` with a learnable ``a`` per channel."""

    def __init__(
        self, in_features: int, alpha: float = 1.0, alpha_logscale: bool = False
    ) -> None:
        super().__init__(in_features, alpha, alpha_logscale)

    def factors(self) -> tuple[Tensor, Tensor]:
        """``(a, 1 / (a + 1e-9))``, each ``(1, C, 1)``."""
        alpha = self.alpha.unsqueeze(0).unsqueeze(-1)  # (C,) -> (1, C, 1)
        if self.alpha_logscale:
            alpha = torch.exp(alpha)
        return alpha, 1.0 / (alpha + self.no_div_by_zero)


class SnakeBeta(_SnakeFamily):
    """``x + 1 / (b + 1e-9) * sin(a x)^2``: frequency ``a`` and magnitude ``b`` per channel."""

    def __init__(
        self, in_features: int, alpha: float = 1.0, alpha_logscale: bool = False
    ) -> None:
        super().__init__(in_features, alpha, alpha_logscale)
        self.beta = nn.Parameter(torch.full((in_features,), self.initial))

    def factors(self) -> tuple[Tensor, Tensor]:
        """``(a, 1 / (b + 1e-9))``, each ``(1, C, 1)``."""
        alpha = self.alpha.unsqueeze(0).unsqueeze(-1)  # (C,) -> (1, C, 1)
        beta = self.beta.unsqueeze(0).unsqueeze(-1)
        if self.alpha_logscale:
            alpha = torch.exp(alpha)
            beta = torch.exp(beta)
        return alpha, 1.0 / (beta + self.no_div_by_zero)


ACTIVATIONS: dict[str, type[nn.Module]] = {"snake": Snake, "snakebeta": SnakeBeta}


def make_snake(activation: str, channels: int, alpha_logscale: bool = False) -> nn.Module:
    """BigVGAN's ``activation`` field ("snake" or "snakebeta") for ``channels`` channels."""
    if activation not in ACTIVATIONS:
        raise ValueError(
            f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}"
        )
    return ACTIVATIONS[activation](channels, alpha_logscale=alpha_logscale)
