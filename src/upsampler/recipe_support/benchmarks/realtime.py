"""A stream fed at real-time pace: when each chunk arrives, what it cost, whether it was late.

The stream recipe (``recipes/stream.py``) cuts a mel into chunks of ``chunk_frames``; chunk
``k`` arrives at ``k * chunk * hop / sample_rate`` seconds and its deadline is the next
chunk's arrival (its own arrival plus its duration). :func:`feed` times each ``step`` call
and the closing ``flush``; with ``realtime`` it sleeps until each arrival and reads each
chunk's finish off the wall clock, without it feeds back to back and puts the finishes on a
simulated clock (a chunk starts at its arrival or when the previous one finished, whichever
is later, and takes its measured compute), so the misses count as they would have at that
pace. :func:`summary` turns one feed into the figures of a table row.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

MS = 1e3
PERCENT = 100.0
MEDIAN, TAIL = 50, 99  # the percentiles of compute per chunk the tables report


@dataclass(frozen=True)
class Schedule:
    """Where each chunk starts in the mel (frames) and when it arrives / is due (seconds)."""

    starts: list[int]
    ends: list[int]
    arrivals: list[float]
    deadlines: list[float]

    @classmethod
    def of(cls, mel_frames: int, chunk_frames: int, hop_length: int,
           sample_rate: int) -> "Schedule":
        """Chunks of ``chunk_frames`` over ``mel_frames`` (the last one may be shorter)."""
        starts = list(range(0, mel_frames, chunk_frames))
        ends = [min(start + chunk_frames, mel_frames) for start in starts]
        frame_seconds = hop_length / sample_rate
        return cls(starts, ends, [start * frame_seconds for start in starts],
                   [end * frame_seconds for end in ends])

    def pieces(self, mel: Any) -> list[Any]:
        """The chunks of ``mel`` (``(..., frames)``, a tensor or an array), each its own copy,
        so no slicing is timed."""
        return [mel[..., start:end].copy() if isinstance(mel, np.ndarray)
                else mel[..., start:end].clone() for start, end in zip(self.starts, self.ends)]


@dataclass(frozen=True)
class Feed:
    """One pass over an utterance: seconds of compute and finish time per chunk, the flush's
    seconds, and every output piece (the flush's last)."""

    compute: list[float]
    finish: list[float]
    flush: float
    outputs: list[Any]


def feed(step: Callable[[Any], Any], flush: Callable[[], Any], pieces: Sequence[Any],
         schedule: Schedule, realtime: bool) -> Feed:
    """Feed ``pieces`` to ``step`` at their arrivals (``realtime``) or back to back, then call
    ``flush``; see the module docstring for how each chunk's finish is read."""
    compute, finish, outputs = [], [], []
    clock = 0.0  # the simulated clock of a back-to-back feed
    start = time.perf_counter()
    for piece, arrival in zip(pieces, schedule.arrivals):
        if realtime:
            wait = start + arrival - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
        began = time.perf_counter()
        outputs.append(step(piece))
        ended = time.perf_counter()
        compute.append(ended - began)
        if realtime:
            finish.append(ended - start)
        else:
            clock = max(clock, arrival) + compute[-1]
            finish.append(clock)
    began = time.perf_counter()
    outputs.append(flush())
    return Feed(compute, finish, time.perf_counter() - began, outputs)


def summary(result: Feed, schedule: Schedule, audio_seconds: float) -> dict[str, Any]:
    """The row figures of one feed: compute per chunk (p50, p99, max) and the flush in ms,
    deadline misses (count, %), and compute per second of audio (chunks and flush)."""
    per_chunk = np.asarray(result.compute) * MS
    p50, p99 = np.percentile(per_chunk, [MEDIAN, TAIL])
    misses = sum(done > due for done, due in zip(result.finish, schedule.deadlines))
    chunks = len(result.compute)
    return {
        "chunks": chunks, "p50_ms": float(p50), "p99_ms": float(p99),
        "max_ms": float(per_chunk.max()), "flush_ms": result.flush * MS,
        "misses": misses, "miss_percent": PERCENT * misses / chunks,
        "compute_per_audio_second": (sum(result.compute) + result.flush) / audio_seconds,
    }


__all__ = ["Feed", "Schedule", "feed", "summary"]
