"""One HiFi-GAN training step and the state an exact resume needs.

``Trainer`` owns the optimisers (AdamW), the per-step exponential learning-rate decay and
the step count. Before ``warmup_steps`` the generator trains on the spectral losses alone
(``mel_weight * mel L1 + stft_weight * multi-resolution STFT``); from then on each step
first updates the discriminators (LSGAN on real vs detached generated audio), then the
generator with adversarial + feature-matching + spectral losses, as HiFi-GAN does.

The modules may be wrapped in ``DistributedDataParallel``: the discriminator step runs
through the wrappers (gradients averaged over ranks), the generator step calls the
discriminators' inner modules and back-propagates into the generator's parameters only.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from upsampler.lengths import check_int
from upsampler.training.checkpoints import load_module_state, unwrap
from upsampler.training.optimiser_order import load_order, save_order
from upsampler.training.losses import (
    MEL_WEIGHT,
    MultiResolutionSTFTLoss,
    discriminator_loss,
    feature_matching_loss,
    generator_adversarial_loss,
    mel_l1_loss,
)

LEARNING_RATE, BETAS, LR_DECAY = 2e-4, (0.8, 0.99), 0.999999  # decay per step
WEIGHT_DECAY = 0.01  # AdamW's default, which HiFi-GAN keeps


class NonFiniteLossError(RuntimeError):
    """A loss became NaN or infinite; the step is named, nothing was updated."""


@dataclass
class LossWeights:
    """Weights of the generator's loss terms (HiFi-GAN: mel 45, adversarial 1, FM 2 built in)."""

    mel: float = MEL_WEIGHT
    stft: float = 1.0
    adversarial: float = 1.0


def _halves(scores: list[Tensor]) -> tuple[list[Tensor], list[Tensor]]:
    """Split each ``(2B, ...)`` tensor of a real+fake batch into its real and fake halves."""
    real = [s[: s.shape[0] // 2] for s in scores]
    fake = [s[s.shape[0] // 2:] for s in scores]
    return real, fake


def _split_features(features: list[list[Tensor]]) -> tuple[list[list[Tensor]], list[list[Tensor]]]:
    pairs = [_halves(maps) for maps in features]
    return [real for real, _ in pairs], [fake for _, fake in pairs]


class Trainer:
    """Optimisers, schedules and one training step for a generator and two discriminators."""

    def __init__(
        self, generator: nn.Module, mpd: nn.Module, msd: nn.Module, loss_mel: nn.Module,
        learning_rate: float = LEARNING_RATE, betas: tuple[float, float] = BETAS,
        lr_decay: float = LR_DECAY, weight_decay: float = WEIGHT_DECAY, warmup_steps: int = 0,
        weights: LossWeights | None = None,
    ) -> None:
        if not learning_rate > 0:
            raise ValueError(f"learning_rate must be > 0, got {learning_rate}")
        if not 0 < lr_decay <= 1:
            raise ValueError(f"lr_decay must be in (0, 1], got {lr_decay}")
        self.generator, self.mpd, self.msd, self.loss_mel = generator, mpd, msd, loss_mel
        self.warmup_steps = check_int("warmup_steps", warmup_steps, 0)
        self.weights = weights or LossWeights()
        self.stft_loss = MultiResolutionSTFTLoss()
        discriminator_parameters = itertools.chain(mpd.parameters(), msd.parameters())
        self.optim_g = torch.optim.AdamW(generator.parameters(), learning_rate, tuple(betas),
                                         weight_decay=weight_decay)
        self.optim_d = torch.optim.AdamW(discriminator_parameters, learning_rate, tuple(betas),
                                         weight_decay=weight_decay)
        self.scheduler_g = torch.optim.lr_scheduler.ExponentialLR(self.optim_g, lr_decay)
        self.scheduler_d = torch.optim.lr_scheduler.ExponentialLR(self.optim_d, lr_decay)
        self.lr_decay = lr_decay
        self.step = 0

    def to(self, device: torch.device) -> "Trainer":
        """Move the loss modules (the models are moved by their owner)."""
        self.loss_mel.to(device)
        self.stft_loss.to(device)
        return self

    @property
    def adversarial(self) -> bool:
        """True once the warm-up is over and the discriminators train."""
        return self.step >= self.warmup_steps

    @property
    def learning_rate(self) -> float:
        """The generator's current learning rate."""
        return float(self.optim_g.param_groups[0]["lr"])

    def _check_finite(self, losses: Mapping[str, Tensor]) -> None:
        bad = [name for name, value in losses.items() if not bool(torch.isfinite(value))]
        if bad:
            raise NonFiniteLossError(
                f"non-finite loss at step {self.step + 1}: "
                + ", ".join(f"{name}={float(losses[name].detach())}" for name in bad)
            )

    def train_step(self, mel: Tensor, wav: Tensor) -> dict[str, float]:
        """One update from ``mel (B, num_mels, T)`` and ``wav (B, 1, T * hop)``; the losses.

        Raises ``NonFiniteLossError`` naming the step before any non-finite loss is
        back-propagated (the discriminators may already have been updated in that step).
        """
        self.generator.train()
        fake = self.generator(mel)  # (B, num_mels, T) -> (B, 1, T * hop)
        if fake.shape != wav.shape:
            raise ValueError(f"generator output {tuple(fake.shape)} does not match wav "
                             f"{tuple(wav.shape)}; segment_length must be a multiple of the hop")
        logged: dict[str, float] = {}
        if self.adversarial:
            logged.update(self._discriminator_step(wav, fake))
        real_mel = self.loss_mel(wav.squeeze(1))  # (B, 1, L) -> (B, L) -> (B, M, L // hop)
        fake_mel = self.loss_mel(fake.squeeze(1))
        losses = {"mel": mel_l1_loss(real_mel, fake_mel)}
        losses["stft_sc"], losses["stft_mag"] = self.stft_loss(fake, wav)
        total = (self.weights.mel * losses["mel"]
                 + self.weights.stft * (losses["stft_sc"] + losses["stft_mag"]))
        if self.adversarial:
            both = torch.cat([wav, fake])  # (2B, 1, L): real first, then generated
            for name, discriminator in (("mpd", self.mpd), ("msd", self.msd)):
                scores, features = unwrap(discriminator)(both)
                _, fake_scores = _halves(scores)
                real_features, fake_features = _split_features(features)
                losses[f"adv_{name}"] = generator_adversarial_loss(fake_scores)
                losses[f"fm_{name}"] = feature_matching_loss(real_features, fake_features)
                total = total + self.weights.adversarial * losses[f"adv_{name}"]
                total = total + losses[f"fm_{name}"]
        losses["generator"] = total
        self._check_finite(losses)
        self.optim_g.zero_grad(set_to_none=True)
        total.backward(inputs=list(self.generator.parameters()))
        self.optim_g.step()
        self.scheduler_g.step()
        self.step += 1
        logged.update({name: float(value.detach()) for name, value in losses.items()})
        return logged

    def _discriminator_step(self, wav: Tensor, fake: Tensor) -> dict[str, float]:
        both = torch.cat([wav, fake.detach()])  # (2B, 1, L): real first, then generated
        losses = {}
        for name, discriminator in (("mpd", self.mpd), ("msd", self.msd)):
            scores, _ = discriminator(both)
            losses[f"disc_{name}"] = discriminator_loss(*_halves(scores))
        losses["discriminator"] = losses["disc_mpd"] + losses["disc_msd"]
        self._check_finite(losses)
        self.optim_d.zero_grad(set_to_none=True)
        losses["discriminator"].backward()
        self.optim_d.step()
        self.scheduler_d.step()  # the discriminators' rate decays from the step they join
        return {name: float(value.detach()) for name, value in losses.items()}

    def state_dict(self) -> dict[str, Any]:
        """HiFi-GAN's ``do_*`` keys plus schedulers, step and random generator states."""
        return {
            "mpd": unwrap(self.mpd).state_dict(), "msd": unwrap(self.msd).state_dict(),
            **save_order(self.optim_g.state_dict(), self.generator),
            "optim_d": self.optim_d.state_dict(),
            "scheduler_g": self.scheduler_g.state_dict(),
            "scheduler_d": self.scheduler_d.state_dict(),
            "steps": self.step, "warmup_steps": self.warmup_steps, "torch_rng": torch.get_rng_state(),
            "python_rng": random.getstate(),
        }

    def load_state_dict(self, state: Mapping[str, Any], source: str) -> None:
        """Restore what :meth:`state_dict` saved; a mismatch is a one-line ``ValueError``."""
        missing = [key for key in ("mpd", "msd", "optim_g", "optim_d", "steps") if key not in state]
        if missing:
            raise ValueError(f"checkpoint {source!r} lacks {missing}; it is not a do_* file")
        load_module_state(self.mpd, state["mpd"], "mpd", source)
        load_module_state(self.msd, state["msd"], "msd", source)
        try:
            self.optim_g.load_state_dict(load_order(state, self.generator))
            self.optim_d.load_state_dict(state["optim_d"])
        except ValueError as error:
            raise ValueError(f"checkpoint {source!r}: optimiser state does not fit "
                             f"({' '.join(str(error).split())})") from error
        self.step = int(state["steps"])
        if "scheduler_g" in state:
            self.scheduler_g.load_state_dict(state["scheduler_g"])
            self.scheduler_d.load_state_dict(state["scheduler_d"])
        else:  # an original HiFi-GAN file: the optimisers hold the decayed rate already
            self.scheduler_g.last_epoch = self.scheduler_d.last_epoch = self.step
        # the rate continues from the saved one; the decay from here on is the configured
        # one (equal to the saved gamma unless the run is resumed to anneal faster or slower)
        self.scheduler_g.gamma = self.scheduler_d.gamma = self.lr_decay
        if "torch_rng" in state:
            torch.set_rng_state(state["torch_rng"])
            random.setstate(state["python_rng"])


__all__ = ["LossWeights", "NonFiniteLossError", "Trainer"]
