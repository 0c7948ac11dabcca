"""Shared by the training tests: a tiny trainer (generator and discriminators), a fixed batch
and a fabricated corpus in HiFi-GAN's layout."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from upsampler import HiFiGANGenerator
from upsampler.audio import MelSpectrogram
from upsampler.training.discriminators import MultiPeriodDiscriminator, MultiScaleDiscriminator
from upsampler.training.loop import Trainer

SAMPLE_RATE, HOP = 16000, 200  # configs/audio/16k_hop200.yaml


def write_corpus(root: Path, train_files: int, held_out_files: int, base_samples: int) -> Path:
    """HiFi-GAN's layout: ``wavs/<name>.wav`` plus ``training.txt`` / ``validation.txt``.

    Utterance ``i`` is a tone of ``180 + 40 i`` Hz in light noise, ``base_samples + 400 i``
    samples long at ``SAMPLE_RATE``; the first ``train_files`` train, the rest are held out.
    """
    rng = np.random.default_rng(0)
    (root / "wavs").mkdir(parents=True)
    names = [f"utt{i}" for i in range(train_files + held_out_files)]
    for i, name in enumerate(names):
        t = np.arange(base_samples + 400 * i) / SAMPLE_RATE
        wav = 0.3 * np.sin(2 * np.pi * (180 + 40 * i) * t) + 0.01 * rng.standard_normal(t.size)
        sf.write(root / "wavs" / f"{name}.wav", wav.astype(np.float32), SAMPLE_RATE)
    (root / "training.txt").write_text("".join(f"{n}|text\n" for n in names[:train_files]))
    (root / "validation.txt").write_text("".join(f"{n}|text\n" for n in names[train_files:]))
    return root


def tiny_train_overrides(corpus: Path, output_dir: Path, *overrides: str, max_steps: int = 2,
                         checkpoint_every: int = 1) -> list[str]:
    """``recipes/train.py`` overrides for a run of seconds: the debug model and one-channel-
    wide discriminators on ``corpus``'s training list, every pair kept, no validation."""
    return ["model=debug", "audio=16k_hop200", "discriminator=small",
            "discriminator.period_channels=[2,2,2,2,2]",
            "discriminator.scale_channels=[2,2,2,2,2,2,2]",
            "discriminator.scale_groups=[1,1,1,1,1,1,1]",
            f"data.train_list={corpus / 'training.txt'}", "data.segment_length=4000",
            "data.batch_size=2", f"max_steps={max_steps}", f"checkpoint_every={checkpoint_every}",
            "keep_checkpoints=null", "validation_every=null", "log_every=1", "num_threads=1",
            "progress=false", "tensorboard=false", f"output_dir={output_dir}", *overrides]


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
