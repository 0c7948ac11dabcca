"""The process group of a ``torchrun`` launch, or a single process when there is none.

``torchrun --nproc-per-node=N`` sets ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK``; without
them (a plain ``python`` run) the context is rank 0 of 1 and every collective is a no-op.
The backend is NCCL when the run uses CUDA and gloo on CPU.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

WORLD_SIZE_ENV, RANK_ENV, LOCAL_RANK_ENV = "WORLD_SIZE", "RANK", "LOCAL_RANK"


@dataclass(frozen=True)
class ProcessContext:
    """Rank, world size and the device this process computes on."""

    rank: int
    world_size: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        """True on rank 0, the process that writes run-wide files."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        """True when a process group was initialised."""
        return self.world_size > 1

    def barrier(self) -> None:
        """Wait for every rank (no-op in a single process)."""
        if self.distributed:
            dist.barrier()

    def broadcast(self, value: Any) -> Any:
        """Rank 0's ``value`` on every rank (picklable objects)."""
        if not self.distributed:
            return value
        box = [value]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def close(self) -> None:
        """Tear the process group down (no-op in a single process)."""
        if self.distributed and dist.is_initialized():
            dist.destroy_process_group()


def init_process_context(device: str = "cpu") -> ProcessContext:
    """Join the ``torchrun`` process group if there is one; pick this rank's device.

    ``device`` is ``"cpu"``, ``"cuda"`` (each rank takes ``cuda:LOCAL_RANK``) or an explicit
    ``"cuda:N"`` for single-process runs. Raises ``ValueError`` naming ``device`` for any
    other value or when CUDA is asked for but not available.
    """
    world_size = int(os.environ.get(WORLD_SIZE_ENV, "1"))
    rank = int(os.environ.get(RANK_ENV, "0"))
    local_rank = int(os.environ.get(LOCAL_RANK_ENV, "0"))
    try:
        chosen = torch.device(device)
    except RuntimeError as error:  # torch's message lists every backend, not ours
        raise ValueError(f"device must be 'cpu', 'cuda' or 'cuda:N', got {device!r}") from error
    if chosen.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(
                f"device={device!r} requested but CUDA is not available; use device=cpu"
            )
        if world_size > 1 or chosen.index is None:
            chosen = torch.device("cuda", local_rank)
        torch.cuda.set_device(chosen)
    elif chosen.type != "cpu":
        raise ValueError(f"device must be 'cpu', 'cuda' or 'cuda:N', got {device!r}")
    if world_size > 1 and not dist.is_initialized():
        backend = "nccl" if chosen.type == "cuda" else "gloo"
        dist.init_process_group(backend=backend, rank=rank, world_size=world_size)
    return ProcessContext(rank=rank, world_size=world_size, device=chosen)


__all__ = ["ProcessContext", "init_process_context"]
