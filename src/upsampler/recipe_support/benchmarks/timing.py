"""Interleaved timing of two callables (ours and the reference), medians and minima."""

from __future__ import annotations

import math
import statistics
import time
from typing import Any, Callable

import torch
from omegaconf import DictConfig
from torch import nn

MS = 1e3
TINY_SECONDS = 1e-9  # guards the reps estimate against a zero probe time


def interleaved_times(
    ours: Callable[[], object], native: Callable[[], object], timing: DictConfig
) -> dict[str, Any]:
    """Interleaved timings of ``ours`` and ``native``: medians (the result), minima, reps.

    Times are in milliseconds; ``ratio`` is ours / native of the medians and
    ``ratio_of_minima`` the same for the fastest reps (less sensitive to a busy machine).
    """

    def elapsed(fn: Callable[[], object]) -> float:
        start = time.perf_counter()
        fn()
        return (time.perf_counter() - start) * MS

    for _ in range(timing.warmup):
        ours(), native()
    probe = (elapsed(ours) + elapsed(native)) / MS
    reps = min(max(math.ceil(timing.target_seconds / max(probe, TINY_SECONDS)), timing.min_reps),
               timing.max_reps)
    times: dict[str, list[float]] = {"ours": [], "native": []}
    for rep in range(reps):
        order = (("ours", ours), ("native", native))
        for name, fn in order if rep % 2 == 0 else order[::-1]:
            times[name].append(elapsed(fn))
    ours_ms, native_ms = statistics.median(times["ours"]), statistics.median(times["native"])
    return {"reps": reps, "ours_ms": ours_ms, "native_ms": native_ms, "ratio": ours_ms / native_ms,
            "ours_min_ms": min(times["ours"]), "native_min_ms": min(times["native"]),
            "ratio_of_minima": min(times["ours"]) / min(times["native"])}


def interleaved_many(calls: dict[str, Callable[[], object]], timing: DictConfig) -> dict[str, Any]:
    """Median milliseconds of each call, run in turn (the order reversed every other rep).

    Returns ``{"reps": n, "<name>_ms": median, "<name>_min_ms": fastest}`` per call.
    """
    def elapsed(fn: Callable[[], object]) -> float:
        start = time.perf_counter()
        fn()
        return (time.perf_counter() - start) * MS

    for _ in range(timing.warmup):
        for fn in calls.values():
            fn()
    probe = sum(elapsed(fn) for fn in calls.values()) / MS
    reps = min(max(math.ceil(timing.target_seconds / max(probe, TINY_SECONDS)), timing.min_reps),
               timing.max_reps)
    times: dict[str, list[float]] = {name: [] for name in calls}
    order = list(calls.items())
    for rep in range(reps):
        for name, fn in order if rep % 2 == 0 else order[::-1]:
            times[name].append(elapsed(fn))
    result: dict[str, Any] = {"reps": reps}
    for name, values in times.items():
        result[f"{name}_ms"] = statistics.median(values)
        result[f"{name}_min_ms"] = min(values)
    return result


def step(layer: nn.Module, x: torch.Tensor, mode: str) -> Callable[[], object]:
    """A no-argument call: a forward, or a forward + backward of every gradient."""
    if mode == "forward":
        def forward() -> object:
            with torch.no_grad():
                return layer(x)
        return forward
    if mode != "forward_backward":
        raise ValueError(f"mode must be 'forward' or 'forward_backward', got {mode!r}")

    def forward_backward() -> object:
        layer.zero_grad(set_to_none=True)
        x.grad = None
        out = layer(x)
        out.backward(torch.ones_like(out))
        return out
    return forward_backward
