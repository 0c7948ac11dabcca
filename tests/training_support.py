"""Shared by the training tests: a tiny trainer (generator and discriminators) and a fixed batch."""

from __future__ import annotations

import math
from collections.abc import Iterator

import pytest
import torch

from upsampler import HiFiGANGenerator
from upsampler.audio import MelSpectrogram
from upsampler.training.discriminators import MultiPeriodDiscriminator, MultiScaleDiscriminator
from upsampler.training.loop import Trainer

SAMPLE_RATE, HOP = 16000, 200  # configs/audio/16k_hop200.yaml


def tiny_trainer(**kwargs) -> Trainer:
    torch.manual_seed(0)
    generator = HiFiGANGenerator(upsample_rates=[5, 5, 4, 2], upsample_kernel_sizes=[10, 10, 8, 4],
                                 upsample_initial_channel=16, resblock="2",
                                 resblock_kernel_sizes=[3], resblock_dilation_sizes=[[1, 3]])
    mpd = MultiPeriodDiscriminator([2, 3], channels=[2, 2, 2, 2, 2])
    msd = MultiScaleDiscriminator([2] * 7, groups=[1] * 7)
    loss_mel = MelSpectrogram(SAMPLE_RATE, 1024, HOP, 800, 80, 0, None)
    return Trainer(generator, mpd, msd, loss_mel, **kwargs)


def fixed_batch() -> tuple[torch.Tensor, torch.Tensor]:
    t = torch.arange(2400) / SAMPLE_RATE
    wav = torch.stack([0.4 * torch.sin(2 * math.pi * 220 * t), 0.3 * torch.sin(2 * math.pi * 330 * t)])
    mel = MelSpectrogram(SAMPLE_RATE, 1024, HOP, 800, 80, 0, 8000)(wav)
    return mel, wav.unsqueeze(1)  # (B, L) -> (B, 1, L)


@pytest.fixture(autouse=False)
def one_thread() -> Iterator[None]:
    """Run a test on one torch thread, then restore the count.

    The tiny models gain nothing from a second thread, and on a busy 2-core machine two
    OpenMP threads wait for each other at every operation (a step ran 10-20x slower).
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
