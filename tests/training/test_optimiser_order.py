"""``do_*`` files hold ``optim_g`` in the original HiFi-GAN's parameter order, by name."""

from __future__ import annotations

import pytest
import torch

import upstream
from training_support import one_thread, tiny_trainer  # noqa: F401  (fixture)
from upsampler.training.checkpoints import load_generator_state
from upsampler.training.optimiser_order import (
    PARAMETER_NAMES_KEY,
    flat_parameter_names,
    reorder_state,
)

# tests/training_support.tiny_trainer's generator, as the original's config.json
TINY = {"upsample_rates": [5, 5, 4, 2], "upsample_kernel_sizes": [10, 10, 8, 4],
        "upsample_initial_channel": 16, "resblock": "2", "resblock_kernel_sizes": [3],
        "resblock_dilation_sizes": [[1, 3]]}
LEGACY = {".parametrizations.weight.original0": ".weight_g",
          ".parametrizations.weight.original1": ".weight_v"}


def legacy_name(name: str) -> str:
    for ours, original in LEGACY.items():
        if name.endswith(ours):
            return name[: -len(ours)] + original
    return name


def reference_with_one_step() -> tuple[torch.nn.Module, torch.optim.Optimizer]:
    """The original generator (upstream's) after one AdamW step on distinct gradients."""
    torch.manual_seed(1)
    reference = upstream.hifigan_generator(TINY)
    optimiser = torch.optim.AdamW(reference.parameters(), 2e-4, (0.8, 0.99))
    for parameter in reference.parameters():
        parameter.grad = torch.randn_like(parameter)
    optimiser.step()
    return reference, optimiser


def test_saved_order_is_the_originals(one_thread) -> None:
    trainer = tiny_trainer()
    state = trainer.state_dict()
    reference_names = [name for name, _ in upstream.hifigan_generator(TINY).named_parameters()]
    assert [legacy_name(name) for name in state[PARAMETER_NAMES_KEY]] == reference_names
    assert state["optim_g"]["param_groups"][0]["params"] == list(range(len(reference_names)))


def test_original_optimiser_state_lands_on_the_same_parameters(one_thread) -> None:
    reference, optimiser = reference_with_one_step()
    trainer = tiny_trainer()
    load_generator_state(trainer.generator, reference.state_dict(), "reference")
    state = trainer.state_dict()
    state["optim_g"] = optimiser.state_dict()  # the original's file: no names kept
    del state[PARAMETER_NAMES_KEY]
    trainer.load_state_dict(state, "reference do_")

    ours = dict(zip(map(legacy_name, flat_parameter_names(trainer.generator)),
                    trainer.generator.parameters()))
    for name, parameter in reference.named_parameters():
        expected = optimiser.state[parameter]["exp_avg"]
        torch.testing.assert_close(trainer.optim_g.state[ours[name]]["exp_avg"], expected,
                                   msg=f"moments of {name}")


def test_round_trip_by_name_restores_every_moment(one_thread) -> None:
    trainer = tiny_trainer()
    for parameter in trainer.generator.parameters():
        parameter.grad = torch.randn_like(parameter)
    trainer.optim_g.step()
    restored = tiny_trainer()
    restored.load_state_dict(trainer.state_dict(), "round trip")
    for before, after in zip(trainer.generator.parameters(), restored.generator.parameters()):
        torch.testing.assert_close(restored.optim_g.state[after]["exp_avg_sq"],
                                   trainer.optim_g.state[before]["exp_avg_sq"])


def test_names_that_do_not_fit_are_one_error() -> None:
    state = {"state": {}, "param_groups": [{"params": [0, 1]}]}
    with pytest.raises(ValueError, match="extra \\['b.weight'\\].*missing \\['c.weight'\\]"):
        reorder_state(state, ["a.bias", "b.weight"], ["a.bias", "c.weight"])
