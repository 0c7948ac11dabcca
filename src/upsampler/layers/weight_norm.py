"""Weight norm for every convolution of a block or generator, HiFi-GAN's init, and folding.

HiFi-GAN wraps every conv and transposed conv in weight norm (``w = g * v / ||v||`` along
dim 0) and draws the direction from normal(0, 0.01). These helpers apply that to any module
tree, and fold it back into plain ``weight`` parameters for inference without changing a
single output.
"""

from __future__ import annotations

from typing import TypeVar

from torch import nn
from torch.nn.utils import parametrizations, parametrize

from upsampler.conv_transpose.module import ConvTranspose1d

INIT_MEAN = 0.0
INIT_STD = 0.01  # HiFi-GAN's ``init_weights``: normal(0, 0.01)
WEIGHT_NORM_DIM = 0  # one gain per output channel (per input channel for transposed convs)

ModuleT = TypeVar("ModuleT", bound=nn.Module)
CONVOLUTIONS = (nn.Conv1d, nn.ConvTranspose1d, ConvTranspose1d)


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
        if isinstance(sub, CONVOLUTIONS) and not parametrize.is_parametrized(sub, "weight"):
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


__all__ = [
    "init_normal_", "apply_weight_norm", "fold_parametrizations", "remove_weight_norm",
    "INIT_STD", "WEIGHT_NORM_DIM",
]
