"""DistributedDataParallel with 2 gloo processes gives one process's gradients on the global batch.

Every loss is a batch mean, and DDP averages the ranks' gradients, so one step of two
processes on the two halves of a batch must leave the same gradients (and weights) as one
process on the whole batch: the generator's from its step, the discriminators' from theirs.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch.nn.parallel import DistributedDataParallel

from training_support import one_thread, tiny_trainer  # noqa: F401 (one_thread: a fixture)
from upsampler.audio import MelSpectrogram
from upsampler.training.loop import Trainer

WORLD_SIZE, GLOBAL_BATCH, LENGTH, SAMPLE_RATE, HOP = 2, 4, 2400, 16000, 200
# float32 sums over a half batch and over the whole batch are ordered differently
RTOL, ATOL = 1e-4, 1e-7

pytestmark = pytest.mark.usefixtures("one_thread")


def global_batch() -> tuple[torch.Tensor, torch.Tensor]:
    t = torch.arange(LENGTH) / SAMPLE_RATE
    wav = torch.stack([0.3 * torch.sin(2 * math.pi * f * t) for f in (150, 220, 330, 440)])
    mel = MelSpectrogram(SAMPLE_RATE, 1024, HOP, 800, 80, 0, 8000)(wav)
    return mel, wav.unsqueeze(1)  # (B, L) -> (B, 1, L)


def gradients(trainer: Trainer) -> dict[str, torch.Tensor]:
    found = {}
    for part in ("generator", "mpd", "msd"):
        module = getattr(trainer, part)
        module = module.module if isinstance(module, DistributedDataParallel) else module
        for name, parameter in module.named_parameters():
            found[f"{part}.{name}"] = parameter.grad.detach().clone()
            found[f"{part}.{name}.value"] = parameter.detach().clone()
    return found


def worker(rank: int, init_file: str, out_file: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank,
                            world_size=WORLD_SIZE)
    try:
        trainer = tiny_trainer(warmup_steps=0)  # the same initial weights on both ranks
        trainer.generator = DistributedDataParallel(trainer.generator)
        trainer.mpd = DistributedDataParallel(trainer.mpd)
        trainer.msd = DistributedDataParallel(trainer.msd)
        mel, wav = global_batch()
        half = slice(rank * GLOBAL_BATCH // WORLD_SIZE, (rank + 1) * GLOBAL_BATCH // WORLD_SIZE)
        trainer.train_step(mel[half], wav[half])
        if rank == 0:
            torch.save(gradients(trainer), out_file)
    finally:
        dist.destroy_process_group()


def test_two_gloo_processes_equal_one_process_on_the_global_batch(tmp_path: Path) -> None:
    out_file = tmp_path / "ddp.pt"
    mp.spawn(worker, args=(str(tmp_path / "init"), str(out_file)), nprocs=WORLD_SIZE, join=True)
    distributed = torch.load(out_file, weights_only=True)
    single = tiny_trainer(warmup_steps=0)
    single.train_step(*global_batch())
    expected = gradients(single)
    assert distributed.keys() == expected.keys()
    assert any(key.startswith("mpd.") and expected[key].abs().sum() > 0 for key in expected)
    for key, value in expected.items():
        torch.testing.assert_close(distributed[key], value, rtol=RTOL, atol=ATOL, msg=key)


def test_one_rank_alone_differs_from_the_global_batch() -> None:
    """The check above can fail: half a batch alone gives other gradients."""
    half = tiny_trainer(warmup_steps=0)
    mel, wav = global_batch()
    half.train_step(mel[:2], wav[:2])
    whole = tiny_trainer(warmup_steps=0)
    whole.train_step(mel, wav)
    first, second = gradients(half), gradients(whole)
    assert not all(torch.allclose(first[k], second[k], rtol=RTOL, atol=ATOL) for k in first)
