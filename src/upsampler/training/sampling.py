"""A ``DistributedSampler`` that can start an epoch part-way, for exact resume.

The order of an epoch depends only on ``(seed, epoch)`` (torch's ``DistributedSampler``
draws a permutation from a generator seeded with ``seed + epoch``); ``start_batch(n, b)``
skips the first ``n`` batches of ``b`` items of this rank's share, so a resumed run sees
exactly the batches the interrupted run had not reached yet.
"""

from __future__ import annotations

from collections.abc import Iterator, Sized

from torch.utils.data import DistributedSampler

from upsampler.lengths import check_int


class ResumableSampler(DistributedSampler):
    """``DistributedSampler(shuffle=True, drop_last=True)`` that can skip leading batches.

    Works without a process group: pass ``num_replicas`` and ``rank`` (1 and 0 for a
    single process).
    """

    def __init__(self, dataset: Sized, num_replicas: int = 1, rank: int = 0,
                 seed: int = 0) -> None:
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=True,
                         seed=seed, drop_last=True)
        self.skipped = 0

    def start_batch(self, batches: int, batch_size: int) -> None:
        """Skip the first ``batches * batch_size`` indices of the next iteration."""
        check_int("batches", batches, 0)
        check_int("batch_size", batch_size, 1)
        self.skipped = batches * batch_size

    def __iter__(self) -> Iterator[int]:
        indices = list(super().__iter__())
        skipped, self.skipped = self.skipped, 0  # only the epoch being resumed starts late
        return iter(indices[skipped:])

    def __len__(self) -> int:
        return max(0, self.num_samples - self.skipped)


__all__ = ["ResumableSampler"]
