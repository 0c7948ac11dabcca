"""HiFi-GAN's training losses and Parallel WaveGAN's multi-resolution STFT loss.

Least-squares GAN (real -> 1, generated -> 0), feature matching (L1 between the
discriminator's activations for real and generated audio), mel L1 on a loss mel without an
upper frequency limit, and the multi-resolution STFT loss: per resolution, spectral
convergence ``||S_real| - |S_gen||_F / ||S_real||_F`` plus the L1 between log magnitudes,
each averaged over the resolutions (Yamamoto et al. 2020, Parallel WaveGAN).

Every loss is a mean over the batch (spectral convergence is taken per utterance, then
averaged, where Parallel WaveGAN's code takes one norm over the whole batch), so data
parallel training, which averages the gradients of the ranks' halves, equals one process
on the whole batch.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from upsampler.lengths import check_int

FEATURE_MATCHING_WEIGHT = 2.0  # HiFi-GAN: loss_fm = 2 * sum of L1s
MEL_WEIGHT = 45.0  # HiFi-GAN: loss_mel = 45 * L1
# Parallel WaveGAN's three resolutions: (n_fft, hop_length, win_length)
STFT_RESOLUTIONS = ((1024, 120, 600), (2048, 240, 1200), (512, 50, 240))
MAGNITUDE_FLOOR = 1e-7  # power floor before the square root and the log


def discriminator_loss(real_scores: Sequence[Tensor], fake_scores: Sequence[Tensor]) -> Tensor:
    """LSGAN discriminator loss: ``sum_k mean((1 - D_k(real))^2) + mean(D_k(fake)^2)``."""
    _check_pairs("real_scores", real_scores, "fake_scores", fake_scores)
    total = real_scores[0].new_zeros(())
    for real, fake in zip(real_scores, fake_scores):
        total = total + torch.mean((1 - real) ** 2) + torch.mean(fake**2)
    return total


def generator_adversarial_loss(fake_scores: Sequence[Tensor]) -> Tensor:
    """LSGAN generator loss: ``sum_k mean((1 - D_k(fake))^2)``."""
    if len(fake_scores) == 0:
        raise ValueError("fake_scores must hold at least one score tensor, got none")
    total = fake_scores[0].new_zeros(())
    for fake in fake_scores:
        total = total + torch.mean((1 - fake) ** 2)
    return total


def feature_matching_loss(
    real_features: Sequence[Sequence[Tensor]], fake_features: Sequence[Sequence[Tensor]]
) -> Tensor:
    """``2 * sum`` over discriminators and layers of ``mean|real - fake|``; real is detached."""
    _check_pairs("real_features", real_features, "fake_features", fake_features)
    total = fake_features[0][0].new_zeros(())
    for real_maps, fake_maps in zip(real_features, fake_features):
        _check_pairs("real_features[k]", real_maps, "fake_features[k]", fake_maps)
        for real, fake in zip(real_maps, fake_maps):
            total = total + torch.mean(torch.abs(real.detach() - fake))
    return FEATURE_MATCHING_WEIGHT * total


def mel_l1_loss(real_mel: Tensor, fake_mel: Tensor) -> Tensor:
    """``mean|real_mel - fake_mel|`` (unweighted; HiFi-GAN multiplies it by ``MEL_WEIGHT``)."""
    if real_mel.shape != fake_mel.shape:
        raise ValueError(
            f"real_mel and fake_mel must have the same shape, got {tuple(real_mel.shape)} "
            f"and {tuple(fake_mel.shape)}"
        )
    return F.l1_loss(fake_mel, real_mel)


def _check_pairs(name_a: str, a: Sequence[object], name_b: str, b: Sequence[object]) -> None:
    if len(a) == 0 or len(a) != len(b):
        raise ValueError(
            f"{name_a} and {name_b} must be non-empty and of equal length, got {len(a)} and "
            f"{len(b)}"
        )


def stft_magnitude(wav: Tensor, n_fft: int, hop_length: int, window: Tensor) -> Tensor:
    """``(B, L) -> (B, n_fft // 2 + 1, L // hop_length + 1)`` magnitude (centered STFT)."""
    spec = torch.stft(wav, n_fft, hop_length=hop_length, win_length=window.shape[0],
                      window=window, center=True, return_complex=True)
    # (B, F, frames) complex -> (B, F, frames, 2) real -> power, floored, then magnitude
    power = torch.view_as_real(spec).pow(2).sum(-1)
    return torch.sqrt(torch.clamp(power, min=MAGNITUDE_FLOOR))


class MultiResolutionSTFTLoss(nn.Module):
    """Spectral convergence and log-magnitude L1, each averaged over STFT resolutions.

    ``forward(fake, real)`` takes ``(B, L)`` or ``(B, 1, L)`` waveforms and returns
    ``(spectral_convergence, log_magnitude)`` scalars; their sum is the loss. Hann windows.
    """

    def __init__(self, resolutions: Sequence[Sequence[int]] = STFT_RESOLUTIONS) -> None:
        super().__init__()
        if len(resolutions) == 0:
            raise ValueError("resolutions must list at least one (n_fft, hop, win) triple")
        self.resolutions: list[tuple[int, int, int]] = []
        for i, resolution in enumerate(resolutions):
            if len(resolution) != 3:
                raise ValueError(
                    f"resolutions[{i}] must be (n_fft, hop_length, win_length), got {resolution!r}"
                )
            n_fft, hop, win = (check_int(f"resolutions[{i}][{j}]", v, 1)
                               for j, v in enumerate(resolution))
            if win > n_fft:
                raise ValueError(f"resolutions[{i}]: win_length={win} must be <= n_fft={n_fft}")
            self.resolutions.append((n_fft, hop, win))
            self.register_buffer(f"window{i}", torch.hann_window(win), persistent=False)
        # a centered STFT reflect-pads n_fft // 2 on each side: the input must be longer
        self.shortest = max(n_fft for n_fft, _, _ in self.resolutions) // 2 + 1

    def forward(self, fake: Tensor, real: Tensor) -> tuple[Tensor, Tensor]:
        """``(B, [1,] L)`` twice -> (spectral convergence, log-magnitude L1), both scalars."""
        if fake.shape != real.shape:
            raise ValueError(
                f"fake and real must have the same shape, got {tuple(fake.shape)} and "
                f"{tuple(real.shape)}"
            )
        if fake.dim() == 3:
            fake, real = fake.squeeze(1), real.squeeze(1)  # (B, 1, L) -> (B, L)
        if fake.shape[-1] < self.shortest:
            raise ValueError(f"waveforms must have at least {self.shortest} samples for the STFT "
                             f"resolutions {self.resolutions}, got {fake.shape[-1]}")
        convergence = fake.new_zeros(())
        log_magnitude = fake.new_zeros(())
        for i, (n_fft, hop, _) in enumerate(self.resolutions):
            window = getattr(self, f"window{i}")
            fake_mag = stft_magnitude(fake, n_fft, hop, window)
            real_mag = stft_magnitude(real, n_fft, hop, window)
            # per utterance ||real - fake||_F / ||real||_F over (F, frames), then the batch mean
            difference = torch.linalg.vector_norm(real_mag - fake_mag, dim=(1, 2))
            convergence = convergence + (difference
                                         / torch.linalg.vector_norm(real_mag, dim=(1, 2))).mean()
            log_magnitude = log_magnitude + F.l1_loss(torch.log(fake_mag), torch.log(real_mag))
        count = len(self.resolutions)
        return convergence / count, log_magnitude / count


__all__ = [
    "FEATURE_MATCHING_WEIGHT", "MEL_WEIGHT", "STFT_RESOLUTIONS", "MultiResolutionSTFTLoss",
    "discriminator_loss", "feature_matching_loss", "generator_adversarial_loss", "mel_l1_loss",
    "stft_magnitude",
]
