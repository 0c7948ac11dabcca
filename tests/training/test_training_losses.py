"""Losses with hand-worked values, and a tiny trainer whose losses fall on a fixed batch."""

from __future__ import annotations

import io
import math

import pytest
import torch

from training_support import fixed_batch, one_thread, tiny_trainer  # noqa: F401 (one_thread: a fixture)
from upsampler.training.loop import LossWeights, NonFiniteLossError
from upsampler.training.losses import (
    MultiResolutionSTFTLoss,
    discriminator_loss,
    feature_matching_loss,
    generator_adversarial_loss,
    mel_l1_loss,
    stft_magnitude,
)

def test_discriminator_loss_hand_worked() -> None:
    real, fake = [torch.tensor([1.0, 0.0])], [torch.tensor([0.0, 1.0])]
    # mean((1 - [1, 0])^2) = 0.5, mean([0, 1]^2) = 0.5
    assert discriminator_loss(real, fake).item() == pytest.approx(1.0)
    # a second discriminator adds its own: (1 - 0.5)^2 + 0.5^2 = 0.5
    both = discriminator_loss(real + [torch.tensor([0.5])], fake + [torch.tensor([0.5])])
    assert both.item() == pytest.approx(1.5)

pytestmark = pytest.mark.usefixtures("one_thread")


def test_generator_losses_hand_worked() -> None:
    assert generator_adversarial_loss([torch.tensor([0.5, 1.0])]).item() == pytest.approx(0.125)
    real = [[torch.tensor([1.0, 2.0]), torch.tensor([[3.0]])]]
    fake = [[torch.zeros(2), torch.tensor([[1.0]])]]
    # 2 * (mean(|1|, |2|) + |3 - 1|) = 2 * (1.5 + 2) = 7
    assert feature_matching_loss(real, fake).item() == pytest.approx(7.0)
    assert mel_l1_loss(torch.ones(2, 3), torch.zeros(2, 3)).item() == pytest.approx(1.0)


def test_feature_matching_sends_no_gradient_to_real_features() -> None:
    real = torch.ones(3, requires_grad=True)
    fake = torch.zeros(3, requires_grad=True)
    feature_matching_loss([[real]], [[fake]]).backward()
    assert real.grad is None and torch.allclose(fake.grad, torch.full((3,), -2.0 / 3))


@pytest.mark.parametrize("call", [
    lambda: discriminator_loss([], []),
    lambda: discriminator_loss([torch.zeros(1)], [torch.zeros(1)] * 2),
    lambda: generator_adversarial_loss([]),
    lambda: mel_l1_loss(torch.zeros(2, 3), torch.zeros(3, 2)),
    lambda: MultiResolutionSTFTLoss([]),
    lambda: MultiResolutionSTFTLoss([(512, 50, 600)]),
    lambda: MultiResolutionSTFTLoss()(torch.zeros(1, 1000), torch.zeros(1, 1000)),
])
def test_bad_loss_inputs_raise_value_error(call) -> None:
    with pytest.raises(ValueError):
        call()


def test_stft_magnitude_matches_torch_stft() -> None:
    wav = torch.randn(2, 3000, generator=torch.Generator().manual_seed(0))
    window = torch.hann_window(240)
    expected = torch.stft(wav, 512, 50, 240, window, return_complex=True).abs()
    assert torch.allclose(stft_magnitude(wav, 512, 50, window), expected, atol=1e-3)
    assert stft_magnitude(wav, 512, 50, window).shape == (2, 512 // 2 + 1, 3000 // 50 + 1)


def test_multi_resolution_stft_hand_worked() -> None:
    loss = MultiResolutionSTFTLoss()
    # unit-variance noise: no STFT bin falls under the 1e-7 power floor, so no bin is clamped
    real = torch.randn(2, 1, 4000, generator=torch.Generator().manual_seed(1))
    convergence, magnitude = loss(real, real)
    assert convergence.item() == 0 and magnitude.item() == 0
    # doubling every magnitude: ||2S - S|| / ||S|| = 1 and |log 2S - log S| = log 2
    convergence, magnitude = loss(2 * real, real)
    assert convergence.item() == pytest.approx(1.0, rel=1e-5)
    assert magnitude.item() == pytest.approx(math.log(2), rel=1e-6)


def test_losses_finite_and_decreasing_on_a_fixed_batch() -> None:
    trainer = tiny_trainer(learning_rate=2e-3, warmup_steps=8)
    mel, wav = fixed_batch()
    history = [trainer.train_step(mel, wav) for _ in range(12)]
    assert all(math.isfinite(v) for losses in history for v in losses.values())
    assert "discriminator" not in history[7] and "discriminator" in history[8]
    assert {"adv_mpd", "adv_msd", "fm_mpd", "fm_msd"} <= history[8].keys()
    assert history[7]["mel"] < history[0]["mel"]
    assert history[7]["generator"] < history[0]["generator"]  # 45 * mel + MR-STFT
    assert history[11]["discriminator"] < history[8]["discriminator"]
    assert trainer.step == 12
    assert trainer.learning_rate == pytest.approx(2e-3 * trainer.scheduler_g.gamma**12)


def test_non_finite_loss_names_the_step_before_updating() -> None:
    trainer = tiny_trainer(weights=LossWeights(mel=float("nan")))
    mel, wav = fixed_batch()
    before = {k: v.clone() for k, v in trainer.generator.state_dict().items()}
    with pytest.raises(NonFiniteLossError, match="step 1: generator=nan"):
        trainer.train_step(mel, wav)
    after = trainer.generator.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before) and trainer.step == 0


def test_trainer_state_round_trip_gives_identical_next_steps() -> None:
    mel, wav = fixed_batch()
    first = tiny_trainer(warmup_steps=1)
    first.train_step(mel, wav)
    first.train_step(mel, wav)
    # through a file, as a checkpoint does (a live state_dict shares the optimiser's tensors)
    buffer = io.BytesIO()
    torch.save((first.state_dict(), first.generator.state_dict()), buffer)
    buffer.seek(0)
    state, weights = torch.load(buffer, weights_only=True)
    second = tiny_trainer(warmup_steps=1)
    second.generator.load_state_dict(weights)
    second.load_state_dict(state, "memory")
    assert second.step == 2 and second.learning_rate == first.learning_rate
    assert first.train_step(mel, wav) == second.train_step(mel, wav)
    for a, b in zip(first.generator.parameters(), second.generator.parameters()):
        assert torch.equal(a, b)


def test_resume_with_another_decay_continues_from_the_saved_rate() -> None:
    mel, wav = fixed_batch()
    first = tiny_trainer(learning_rate=1e-3, lr_decay=0.5)
    for _ in range(3):
        first.train_step(mel, wav)
    assert first.learning_rate == pytest.approx(1e-3 / 8)
    buffer = io.BytesIO()
    torch.save((first.state_dict(), first.generator.state_dict()), buffer)
    buffer.seek(0)
    state, weights = torch.load(buffer, weights_only=True)
    annealed = tiny_trainer(learning_rate=1e-3, lr_decay=0.25)  # resumed to anneal faster
    annealed.generator.load_state_dict(weights)
    annealed.load_state_dict(state, "memory")
    assert annealed.learning_rate == pytest.approx(1e-3 / 8)
    annealed.train_step(mel, wav)
    annealed.train_step(mel, wav)
    assert annealed.learning_rate == pytest.approx(1e-3 / 8 / 16)
