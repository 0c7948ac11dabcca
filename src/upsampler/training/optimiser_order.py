"""The generator optimiser's state in the original's parameter order, by name.

A ``torch.optim`` state_dict knows parameters by position only. HiFi-GAN's (and BigVGAN's)
``do_*`` files hold ``optim_g`` in the order the original ``Generator`` defines its
parameters: ``conv_pre``, every ``ups.i``, every ``resblocks.n``, then what follows
(``activation_post``, ``conv_post``). Our generator nests each upsampler with its residual
blocks in a stage, so its own order interleaves them; loading one order into the other
pairs each parameter with another's Adam moments (or fails on the first shape that
differs). ``do_*`` files are therefore written in the original order, with the flat names
under ``optim_g_parameters``, and read back by name; a file without names (the original's,
or one written before the names were kept) is read in the original order.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from torch import nn

from upsampler.models.checkpoint import branches_per_stage, flat_key
from upsampler.training.checkpoints import unwrap

PARAMETER_NAMES_KEY = "optim_g_parameters"
_STAGE_SECTIONS = {"ups": 1, "resblocks": 2}  # the original defines all ups, then all resblocks
_BEFORE, _AFTER = 0, 3


def flat_parameter_names(generator: nn.Module) -> list[str]:
    """The generator's parameter names in its own order, under the original's flat keys."""
    model = unwrap(generator)
    if not hasattr(model, "stages"):  # not a stage-built generator: its own names
        return [name for name, _ in model.named_parameters()]
    num_kernels = branches_per_stage(model)
    return [flat_key(name, num_kernels) for name, _ in model.named_parameters()]


def original_order(names: Sequence[str]) -> list[str]:
    """``names`` (flat keys, our order) in the original's definition order.

    Parameters before the first stage keep their place, then every ``ups.i`` by ``i``,
    every ``resblocks.n`` by ``n``, then the rest; inside one module the order is kept.
    """
    seen_stage = False
    keys = []
    for position, name in enumerate(names):
        head, _, rest = name.partition(".")
        if head in _STAGE_SECTIONS:
            seen_stage = True
            keys.append((_STAGE_SECTIONS[head], int(rest.partition(".")[0]), position))
        else:
            keys.append((_AFTER if seen_stage else _BEFORE, 0, position))
    return [names[key[-1]] for key in sorted(keys)]


def reorder_state(state: Mapping[str, Any], names: Sequence[str],
                  order: Sequence[str]) -> dict[str, Any]:
    """An optimiser ``state_dict`` over parameters ``names`` re-indexed into ``order``.

    ``names`` lists the parameters as ``state``'s param groups hold them (group by group);
    the result lists the same parameters so that index ``i`` is ``order[i]``, the form
    ``Optimizer.load_state_dict`` pairs with an optimiser built over ``order``.
    """
    groups = state["param_groups"]
    ids = [index for group in groups for index in group["params"]]
    if len(ids) != len(names) or sorted(names) != sorted(order):
        extra = sorted(set(names) - set(order))[:3]
        missing = sorted(set(order) - set(names))[:3]
        raise ValueError(
            f"optimiser state holds {len(ids)} parameters named {len(names)} ways, the "
            f"generator has {len(order)}: extra {extra}, missing {missing}"
        )
    name_of = dict(zip(ids, names))
    position = {name: index for index, name in enumerate(order)}
    new_groups = [
        {**group, "params": sorted(position[name_of[index]] for index in group["params"])}
        for group in groups
    ]
    new_state = {position[name_of[index]]: value for index, value in state["state"].items()}
    return {"state": new_state, "param_groups": new_groups}


def save_order(state: Mapping[str, Any], generator: nn.Module) -> dict[str, Any]:
    """``optim_g``'s state in the original order and the names, as ``do_*`` keys."""
    names = flat_parameter_names(generator)
    order = original_order(names)
    return {"optim_g": reorder_state(state, names, order), PARAMETER_NAMES_KEY: order}


def load_order(checkpoint: Mapping[str, Any], generator: nn.Module) -> dict[str, Any]:
    """A ``do_*`` file's ``optim_g`` re-indexed into the generator's own parameter order."""
    names = flat_parameter_names(generator)
    saved = checkpoint.get(PARAMETER_NAMES_KEY) or original_order(names)
    return reorder_state(checkpoint["optim_g"], list(saved), names)


__all__ = ["PARAMETER_NAMES_KEY", "flat_parameter_names", "load_order", "original_order",
           "reorder_state", "save_order"]
