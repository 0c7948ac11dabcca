"""Layer sections: per-call overhead, formulation crossovers, long kernels, compile."""

from __future__ import annotations

import contextlib
import itertools
import json
import subprocess
import sys
import time
from typing import Any, Callable

import torch
from omegaconf import DictConfig
from torch import nn

from upsampler import ConvTranspose1d, HiFiGANGenerator
from upsampler.conv_transpose import dispatch
from upsampler.recipe_support.benchmarks.timing import MS, interleaved_times, step



def bench_overhead(cfg: DictConfig) -> list[dict[str, Any]]:
    """Per-call cost at tiny inputs (batch 1, ``T <= 10``): ours vs torch, interleaved."""
    rows = []
    for spec in cfg.overhead.layers:
        args = (spec.in_channels, spec.out_channels, spec.kernel_size, spec.stride, spec.padding)
        ours = ConvTranspose1d(*args, device=cfg.device)
        native = nn.ConvTranspose1d(*args, device=cfg.device)
        native.load_state_dict(ours.state_dict())
        for length, mode in itertools.product(cfg.overhead.lengths, cfg.modes):
            x = torch.randn(1, spec.in_channels, length, device=cfg.device,
                            requires_grad=mode == "forward_backward")
            timings = interleaved_times(step(ours, x, mode), step(native, x, mode),
                                        cfg.overhead.timing)
            rows.append({"layer": str(ours), "input_length": length, "mode": mode,
                         "native_us": timings["native_ms"] * MS, "ours_us": timings["ours_ms"] * MS,
                         "ratio": timings["ratio"], "ratio_of_minima": timings["ratio_of_minima"]})
    return rows


def forced(formulation: str) -> contextlib.AbstractContextManager[None]:
    """Force one formulation, forward and backward, for every shape while active."""
    return dispatch.force(forward=formulation, backward=formulation)


def bench_crossover(cfg: DictConfig) -> list[dict[str, Any]]:
    """Where the formulations cross: scatter matrix vs index over ``K * T * L_out``, index vs
    strided blocks over ``K * T``, windows vs blocks over ``K / stride``; ``ratio`` below 1 favours the first of the pair."""
    rows = []
    cross = cfg.crossover
    for (first, second), grid in (("matrix", "index"), cross.matrix_grid), \
                                  (("index", "blocks"), cross.index_grid), \
                                  (("windows", "blocks"), cross.windows_grid):
        for spec, mode in itertools.product(grid, cfg.modes):
            layer = ConvTranspose1d(spec.channels, spec.channels, spec.kernel_size, spec.stride)
            x = torch.randn(1, spec.channels, spec.length, requires_grad=mode == "forward_backward")
            call = step(layer, x, mode)

            def under(name: str, call: Callable[[], object] = call) -> Callable[[], object]:
                def run_forced() -> object:
                    with forced(name):
                        return call()
                return run_forced

            timings = interleaved_times(under(first), under(second), cross.timing)
            rows.append({"pair": f"{first}/{second}", "channels": spec.channels,
                         "kernel_size": spec.kernel_size,
                         "stride": spec.stride, "input_length": spec.length, "mode": mode,
                         "column_values": spec.channels * spec.kernel_size * spec.length,
                         "span_in_strides": spec.kernel_size / spec.stride,
                         "ratio": timings["ratio"]})
    return rows


LONG_KERNEL_SCRIPT = """
import json, resource, sys, time, torch
from torch import nn
from upsampler import ConvTranspose1d
torch.set_num_threads({threads})
cls = ConvTranspose1d if sys.argv[1] == "ours" else nn.ConvTranspose1d
layer = cls({channels}, {channels}, {kernel_size})
x = torch.randn(1, {channels}, {length})
def peak():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
base = peak()
start = time.perf_counter()
with torch.no_grad():
    layer(x)
forward = time.perf_counter() - start
forward_peak = peak()
x.requires_grad_()
start = time.perf_counter()
layer(x).sum().backward()
both = time.perf_counter() - start
print(json.dumps({{"forward_s": forward, "forward_backward_s": both,
                   "forward_extra_mib": (forward_peak - base) / 2**20,
                   "peak_extra_mib": (peak() - base) / 2**20}}))
"""


def bench_long_kernel(cfg: DictConfig) -> list[dict[str, Any]]:
    """A kernel of thousands of taps at stride 1, ours vs torch, each in a fresh process
    (peak resident memory above the process's state before the call)."""
    spec = cfg.long_kernel
    script = LONG_KERNEL_SCRIPT.format(threads=cfg.num_threads, channels=spec.channels,
                                       kernel_size=spec.kernel_size, length=spec.length)
    rows = []
    for rep in range(spec.reps):
        for impl in ("ours", "native") if rep % 2 == 0 else ("native", "ours"):
            done = subprocess.run([sys.executable, "-c", script, impl], check=True,
                                  capture_output=True, text=True)
            rows.append({"impl": impl, "rep": rep, **json.loads(done.stdout.splitlines()[-1])})
    return rows


def bench_compile(cfg: DictConfig) -> list[dict[str, Any]]:
    """HiFi-GAN inference, eager vs ``torch.compile(fullgraph=True)`` (both ours), interleaved."""
    rows = []
    for preset in cfg.compile.presets:
        model = HiFiGANGenerator.from_preset(preset).to(cfg.device).eval()
        model.remove_weight_norm()
        compiled = torch.compile(model, fullgraph=True)
        mel = torch.randn(1, model.num_mels, cfg.compile.mel_frames, device=cfg.device)
        start = time.perf_counter()
        with torch.no_grad():
            diff = (compiled(mel) - model(mel)).abs().max().item()
        compile_s = time.perf_counter() - start
        timings = interleaved_times(step(model, mel, "forward"), step(compiled, mel, "forward"),
                                    cfg.compile.timing)
        rows.append({"preset": preset, "mel_frames": cfg.compile.mel_frames,
                     "eager_ms": timings["ours_ms"], "compiled_ms": timings["native_ms"],
                     "speedup": timings["ratio"], "compile_s": compile_s,
                     "max_abs_diff": diff})
    return rows
