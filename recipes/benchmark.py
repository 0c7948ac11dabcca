"""Time ``upsampler.ConvTranspose1d`` against ``torch.nn.ConvTranspose1d`` (Hydra recipe).

    python recipes/benchmark.py                          # full table, 2 threads
    python recipes/benchmark.py quick=true               # smoke run
    python recipes/benchmark.py num_threads=1 generator.enabled=true
    python recipes/benchmark.py training.enabled=true      # one training step of the demo model
    python recipes/benchmark.py streaming.enabled=true   # + streaming V1 / V3 vs offline

Both layers hold the same weights and see the same input; calls alternate between them
(ours first on even reps, native first on odd ones) and each time is the median of the
reps (``ratio_of_minima`` compares the fastest reps instead, a check on a busy machine).
Forward runs under ``torch.no_grad()``; forward+backward computes every gradient.
Prints ratios ours / native (below 1: ours is faster), their geometric mean over the
HiFi-GAN shapes, and our column buffer ``B * C_out * K * T`` floats, the extra memory our
op holds beyond the output. Writes ``benchmark.json`` and ``benchmark.csv`` (plus
``generator.csv`` and one ``<section>.csv`` per enabled section) into ``output_dir``.
"""

from __future__ import annotations

import contextlib
import copy
import csv
import io
import itertools
import json
import logging
import math
import platform
import re
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import hydra
import torch
from omegaconf import DictConfig, OmegaConf
from torch import nn
from tqdm import tqdm

from upsampler import (
    BigVGANGenerator,
    ConvTranspose1d,
    HiFiGANGenerator,
    StreamingGenerator,
    index_scatter,
    long_kernel,
)
from upsampler.files import atomic_write_text, write_json
from upsampler.layers import Activation1d
from upsampler.layers.weight_norm import apply_weight_norm
from upsampler.lengths import exact_padding
from upsampler.models.hifigan import PRESETS

log = logging.getLogger("benchmark")
MIB = 2**20
MS = 1e3
TINY_SECONDS = 1e-9  # guards the reps estimate against a zero probe time


@dataclass(frozen=True)
class LayerShape:
    """One benchmarked layer; it sees ``mel_frames * length_factor`` input steps."""

    name: str
    in_channels: int
    out_channels: int
    kernel_size: int
    stride: int
    padding: int
    groups: int
    length_factor: int
    hifigan: bool


def hifigan_shapes(presets: list[str]) -> list[LayerShape]:
    """Every upsampling layer of the presets, with HiFi-GAN's padding ``(k - u) // 2``."""
    shapes = []
    for preset in presets:
        fields = PRESETS[preset]
        channels, factor = fields["upsample_initial_channel"], 1
        for i, (u, k) in enumerate(zip(fields["upsample_rates"], fields["upsample_kernel_sizes"])):
            padding, _ = exact_padding(k, u)  # equals (k - u) // 2 for these even k - u
            shapes.append(LayerShape(f"{preset}.ups{i}", channels, channels // 2, k, u, padding, 1,
                                     factor, hifigan=True))
            channels, factor = channels // 2, factor * u
    return shapes


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


def bench_layer(shape: LayerShape, frames: int, batch: int, mode: str,
                cfg: DictConfig) -> dict[str, Any]:
    """One table row: ours vs torch's layer of ``shape`` on the same weights and input."""
    args = (shape.in_channels, shape.out_channels, shape.kernel_size, shape.stride, shape.padding)
    kwargs = {"groups": shape.groups, "device": cfg.device, "dtype": torch.float32}
    ours = ConvTranspose1d(*args, **kwargs)
    native = nn.ConvTranspose1d(*args, **kwargs)
    native.load_state_dict(ours.state_dict())
    length = frames * shape.length_factor
    x = torch.randn(batch, shape.in_channels, length, device=cfg.device,
                    requires_grad=mode == "forward_backward")
    timings = interleaved_times(step(ours, x, mode), step(native, x, mode), cfg.timing)
    itemsize = torch.finfo(torch.float32).bits // 8
    return {
        **asdict(shape), "mel_frames": frames, "input_length": length, "batch": batch,
        "mode": mode, **timings,
        "column_buffer_mib": batch * shape.out_channels * shape.kernel_size * length * itemsize / MIB,
        "output_mib": batch * shape.out_channels * length * shape.stride * itemsize / MIB,
    }


def with_native_upsamplers(generator: HiFiGANGenerator) -> nn.Module:
    """A copy of ``generator`` whose stage upsamplers (``ups[i]``) are
    ``torch.nn.ConvTranspose1d`` with the same state."""
    native = copy.deepcopy(generator)
    for i, up in enumerate(generator.ups):
        if not isinstance(up, ConvTranspose1d):
            raise TypeError(f"generator.ups[{i}] must be upsampler.ConvTranspose1d, got "
                            f"{type(up).__name__}")
        swap = nn.ConvTranspose1d(
            up.in_channels, up.out_channels, up.kernel_size, up.stride, up.padding,
            up.output_padding, up.groups, up.bias is not None, up.dilation,
            device=up.weight.device, dtype=up.weight.dtype,
        )
        swap.load_state_dict(up.state_dict())
        native.stages[i].upsample = swap
    return native


def bench_generator(cfg: DictConfig) -> list[dict[str, Any]]:
    """Whole generator (weight norm folded, eval), ours vs the same with torch's ``ups``."""
    gen_cfg = cfg.generator
    ours = HiFiGANGenerator.from_preset(gen_cfg.preset).to(cfg.device).eval()
    ours.remove_weight_norm()
    native = with_native_upsamplers(ours)
    rows = []
    for frames in tqdm(list(gen_cfg.mel_frames), desc="generator", disable=not cfg.progress):
        mel = torch.randn(gen_cfg.batch_size, ours.num_mels, frames, device=cfg.device)
        with torch.no_grad():
            diff = (ours(mel) - native(mel)).abs().max().item()
        timings = interleaved_times(step(ours, mel, "forward"), step(native, mel, "forward"),
                                    gen_cfg)
        rows.append({"preset": gen_cfg.preset, "mel_frames": frames, "batch": gen_cfg.batch_size,
                     **timings, "max_abs_diff": diff})
    return rows


def with_native_upsamplers_trainable(generator: HiFiGANGenerator) -> nn.Module:
    """A copy of a weight-normed ``generator`` whose ``ups[i]`` are weight-normed torch layers."""
    native = copy.deepcopy(generator)
    for i, up in enumerate(generator.ups):
        if not isinstance(up, ConvTranspose1d):
            raise TypeError(f"generator.ups[{i}] must be upsampler.ConvTranspose1d, got "
                            f"{type(up).__name__}")
        swap = apply_weight_norm(nn.ConvTranspose1d(
            up.in_channels, up.out_channels, up.kernel_size, up.stride, up.padding,
            up.output_padding, up.groups, up.bias is not None, up.dilation,
            device=up.weight.device, dtype=up.weight.dtype,
        ))
        swap.load_state_dict(up.state_dict())  # the same weight-norm keys g, v and the bias
        native.stages[i].upsample = swap
    return native


def bench_training(cfg: DictConfig) -> list[dict[str, Any]]:
    """One training step (forward + backward, weight norm kept), ours vs torch's ``ups``."""
    train_cfg = cfg.training
    ours = HiFiGANGenerator(**OmegaConf.to_container(train_cfg.model)).to(cfg.device).train()
    native = with_native_upsamplers_trainable(ours).train()
    rows = []
    for frames in tqdm(list(train_cfg.mel_frames), desc="training", disable=not cfg.progress):
        mel = torch.randn(train_cfg.batch_size, ours.num_mels, frames, device=cfg.device)
        with torch.no_grad():
            diff = (ours(mel) - native(mel)).abs().max().item()
        timings = interleaved_times(step(ours, mel, "forward_backward"),
                                    step(native, mel, "forward_backward"), train_cfg)
        rows.append({"hop": ours.hop_length, "mel_frames": frames, "batch": train_cfg.batch_size,
                     "parameters": sum(p.numel() for p in ours.parameters()), **timings,
                     "max_abs_diff": diff})
    return rows


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


@contextlib.contextmanager
def forced(formulation: str) -> Iterator[None]:
    """Force one overlap-add formulation for every shape while active."""
    saved = (index_scatter.INDEX_SCATTER_MAX_COLUMNS, long_kernel.WINDOWS_MIN_SPAN_RATIO,
             long_kernel.WINDOWS_MIN_COLUMNS)
    never = 2**62
    index_scatter.INDEX_SCATTER_MAX_COLUMNS = never if formulation == "index" else 0
    long_kernel.WINDOWS_MIN_SPAN_RATIO = 0 if formulation == "windows" else never
    long_kernel.WINDOWS_MIN_COLUMNS = 0
    try:
        yield
    finally:
        (index_scatter.INDEX_SCATTER_MAX_COLUMNS, long_kernel.WINDOWS_MIN_SPAN_RATIO,
         long_kernel.WINDOWS_MIN_COLUMNS) = saved


def bench_crossover(cfg: DictConfig) -> list[dict[str, Any]]:
    """Where the formulations cross: index vs strided blocks over ``K * T``, windows vs
    blocks over ``K / stride``; ``ratio`` below 1 favours the first of the pair."""
    rows = []
    cross = cfg.crossover
    for (first, second), grid in (("index", "blocks"), cross.index_grid), \
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
                     "speedup": 1 / timings["ratio"], "compile_s": compile_s,
                     "max_abs_diff": diff})
    return rows


def bench_onnx(cfg: DictConfig) -> list[dict[str, Any]]:
    """HiFi-GAN inference, eager torch vs the ONNX export in onnxruntime (same thread count),
    interleaved; ``ratio`` is onnxruntime / torch (below 1: onnxruntime is faster)."""
    import onnxruntime

    from upsampler.export import INPUT_NAME, export_onnx

    rows = []
    for preset in cfg.onnx.presets:
        model = HiFiGANGenerator.from_preset(preset).eval()
        model.remove_weight_norm()
        path = Path(cfg.output_dir) / f"{preset}.onnx"
        start = time.perf_counter()
        export_onnx(model, path, torch.randn(2, model.num_mels, cfg.onnx.export_frames))
        export_s = time.perf_counter() - start
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = cfg.num_threads, 1
        session = onnxruntime.InferenceSession(str(path), options,
                                               providers=["CPUExecutionProvider"])
        mel = torch.randn(1, model.num_mels, cfg.onnx.mel_frames)
        feed = {INPUT_NAME: mel.numpy()}
        with torch.no_grad():
            diff = float(abs(session.run(None, feed)[0] - model(mel).numpy()).max())
        timings = interleaved_times(lambda: session.run(None, feed), step(model, mel, "forward"),
                                    cfg.onnx.timing)
        rows.append({"preset": preset, "mel_frames": cfg.onnx.mel_frames,
                     "torch_ms": timings["native_ms"], "onnxruntime_ms": timings["ours_ms"],
                     "ratio": timings["ratio"], "ratio_of_minima": timings["ratio_of_minima"],
                     "export_s": export_s, "max_abs_diff": diff})
    return rows


def bigvgan_reference(generator: BigVGANGenerator) -> nn.Module:
    """A copy of ``generator`` computing as BigVGAN's torch path does: torch's own
    ``nn.ConvTranspose1d`` for the stage upsamplers and for every ``UpSample1d`` (the whole
    signal upsampled with its zeros), then Snake at twice the rate, then the strided
    low-pass (``polyphase`` off). Same weights and buffers, same numbers."""
    reference = with_native_upsamplers(generator)
    reference.set_polyphase(False)
    for module in reference.modules():
        if isinstance(module, Activation1d):
            ours = module.upsample.conv
            native = nn.ConvTranspose1d(ours.in_channels, ours.out_channels, ours.kernel_size,
                                        ours.stride, groups=ours.groups, bias=False)
            del native.weight
            native.register_buffer("weight", ours.weight, persistent=False)
            module.upsample.conv = native
    return reference


BREAKDOWN = {  # time categories of a BigVGAN forward, by the module that spends it
    "snake": lambda m, name: name.endswith(".act"),
    "anti_alias_filters": lambda m, name: isinstance(m, Activation1d),
    "residual_convs": lambda m, name: isinstance(m, nn.Conv1d) and ".mrf." in name,
    "stage_upsamplers": lambda m, name: re.fullmatch(r"stages\.\d+\.upsample", name) is not None,
    "conv_pre_post": lambda m, name: name in ("conv_pre", "conv_post"),
}


def time_breakdown(model: nn.Module, mel: torch.Tensor) -> dict[str, float]:
    """Milliseconds per category (``BREAKDOWN``) of one forward, by forward hooks; the
    filters' time excludes the Snake inside them; ``other`` is adds, means and the rest."""
    spent = {name: 0.0 for name in BREAKDOWN}
    handles, starts = [], {}
    for name, module in model.named_modules():
        for category, test in BREAKDOWN.items():
            if test(module, name):
                def pre(mod, args, key=(category, name)):
                    starts[key] = time.perf_counter()

                def post(mod, args, out, key=(category, name)):
                    spent[key[0]] += (time.perf_counter() - starts[key]) * MS
                handles += [module.register_forward_pre_hook(pre),
                            module.register_forward_hook(post)]
                break
    try:
        start = time.perf_counter()
        with torch.no_grad():
            model(mel)
        total = (time.perf_counter() - start) * MS
    finally:
        for handle in handles:
            handle.remove()
    spent["anti_alias_filters"] -= spent["snake"]
    return {**spent, "other": total - sum(spent.values()), "total": total}


def bench_bigvgan(cfg: DictConfig) -> list[dict[str, Any]]:
    """BigVGAN (weight norm folded, eval), ours (polyphase) vs BigVGAN's torch path."""
    big = cfg.bigvgan
    ours = BigVGANGenerator.from_preset(big.preset).to(cfg.device).eval()
    ours.remove_weight_norm()
    reference = bigvgan_reference(ours)
    rows = []
    for seconds in big.audio_seconds:
        frames = math.ceil(seconds * big.sample_rate / ours.hop_length)
        mel = torch.randn(big.batch_size, ours.num_mels, frames, device=cfg.device)
        with torch.no_grad():
            diff = (ours(mel) - reference(mel)).abs().max().item()
        timings = interleaved_times(step(ours, mel, "forward"), step(reference, mel, "forward"),
                                    big)
        audio = big.batch_size * frames * ours.hop_length / big.sample_rate
        row = {"preset": big.preset, "mel_frames": frames, "audio_seconds": audio, **timings,
               "ours_x_real_time": audio / (timings["ours_ms"] / MS),
               "reference_x_real_time": audio / (timings["native_ms"] / MS),
               "max_abs_diff": diff}
        for label, model in (("ours", ours), ("reference", reference)):
            row.update({f"{label}_{k}_ms": v for k, v in time_breakdown(model, mel).items()})
        rows.append(row)
def bench_streaming(cfg: DictConfig) -> list[dict[str, Any]]:
    """Streaming cost per second of audio, chunk sizes and offline interleaved per preset.

    Weight norm folded, ``torch.inference_mode()``; every stream is checked against the
    offline output first (``max_abs_diff``).
    """
    stream_cfg = cfg.streaming
    rows = []
    for preset in stream_cfg.presets:
        widths = {} if stream_cfg.width is None else {"upsample_initial_channel": stream_cfg.width}
        generator = HiFiGANGenerator.from_preset(preset, **widths).to(cfg.device).eval()
        generator.remove_weight_norm()
        frames = stream_cfg.mel_frames
        mel = torch.randn(1, generator.num_mels, frames, device=cfg.device)
        audio_seconds = frames * generator.hop_length / stream_cfg.sample_rate

        def streamed(chunk: int) -> torch.Tensor:
            streamer = StreamingGenerator(generator, stream_cfg.sample_rate)
            outs = [streamer.step(mel[:, :, i : i + chunk]) for i in range(0, frames, chunk)]
            return torch.cat(outs + [streamer.flush()], dim=-1)

        runs: dict[str, Callable[[], object]] = {"offline": lambda: generator(mel)}
        runs.update({f"chunk_{c}": (lambda c=c: streamed(c)) for c in stream_cfg.chunk_frames})
        times: dict[str, list[float]] = {name: [] for name in runs}
        with torch.inference_mode():
            expected = generator(mel)
            diffs = {name: (run() - expected).abs().max().item() for name, run in runs.items()}
            for _ in range(stream_cfg.reps):
                for name, run in runs.items():
                    start = time.perf_counter()
                    run()
                    times[name].append(time.perf_counter() - start)
        offline = statistics.median(times["offline"])
        for name, values in times.items():
            seconds = statistics.median(values)
            rows.append({
                "preset": preset, "mode": name, "mel_frames": frames, "reps": stream_cfg.reps,
                "seconds_per_audio_second": seconds / audio_seconds,
                "ratio_to_offline": seconds / offline, "max_abs_diff": diffs[name],
            })
    return rows


SECTIONS: dict[str, Callable[[DictConfig], list[dict[str, Any]]]] = {
    "overhead": bench_overhead, "crossover": bench_crossover, "long_kernel": bench_long_kernel,
    "compile": bench_compile, "onnx": bench_onnx, "training": bench_training,
    "bigvgan": bench_bigvgan, "streaming": bench_streaming,
}


def geometric_mean(values: list[float]) -> float | None:
    """Geometric mean of positive ``values``; None for an empty list."""
    return math.exp(statistics.fmean(math.log(v) for v in values)) if values else None


def to_csv(rows: list[dict[str, Any]]) -> str:
    """The rows as CSV text, one column per key of the first row."""
    stream = io.StringIO()
    writer = csv.DictWriter(stream, fieldnames=list(rows[0]) if rows else [])
    writer.writeheader()
    writer.writerows(rows)
    return stream.getvalue()


def format_table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    """Right-aligned plain-text table of ``columns`` (floats to three significant digits)."""

    def cell(value: Any) -> str:
        return f"{value:.3g}" if isinstance(value, float) else str(value)

    table = [columns] + [[cell(row[c]) for c in columns] for row in rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(columns))]
    return "\n".join("  ".join(v.rjust(w) for v, w in zip(line, widths)) for line in table)


def run(cfg: DictConfig) -> dict[str, Any]:
    """Run the benchmark described by ``cfg``; return (and write) its results."""
    if cfg.quick:
        cfg = OmegaConf.merge(cfg, cfg.quick_settings)
    output_dir = Path(cfg.output_dir)
    threads_before = torch.get_num_threads()
    torch.set_num_threads(cfg.num_threads)
    torch.manual_seed(cfg.seed)
    try:
        shapes = hifigan_shapes(list(cfg.hifigan_presets))
        shapes += [LayerShape(**spec, hifigan=False) for spec in cfg.extra_layers]
        cases = [(shape, frames, batch, mode) for shape in shapes for frames in cfg.mel_frames
                 for batch in cfg.batch_sizes for mode in cfg.modes]
        rows = [bench_layer(*case, cfg) for case in
                tqdm(cases, desc="layers", disable=not cfg.progress)]
        generator_rows = bench_generator(cfg) if cfg.generator.enabled else []
        sections = {name: section(cfg) for name, section in SECTIONS.items()
                    if cfg[name].enabled}
    finally:
        torch.set_num_threads(threads_before)
    geomean = {mode: geometric_mean([r["ratio"] for r in rows if r["hifigan"] and r["mode"] == mode])
               for mode in cfg.modes}
    results = {
        "environment": {"torch": torch.__version__, "python": platform.python_version(),
                        "machine": platform.machine(), "num_threads": cfg.num_threads,
                        "device": cfg.device},
        "config": OmegaConf.to_container(cfg, resolve=True),
        "geometric_mean_ratio": geomean,
        "layers": rows,
        "generator": generator_rows,
        **sections,
    }
    columns = ["name", "mel_frames", "input_length", "batch", "mode", "reps", "native_ms",
               "ours_ms", "ratio", "ratio_of_minima", "column_buffer_mib"]
    print(format_table(rows, columns))
    print("geometric mean of ratios ours / native over the HiFi-GAN shapes: "
          + ", ".join(f"{mode} {value:.3f}" for mode, value in geomean.items() if value))
    if generator_rows:
        print(format_table(generator_rows, list(generator_rows[0])))
        atomic_write_text(output_dir / "generator.csv", to_csv(generator_rows))
    for name, section_rows in sections.items():
        print(f"{name}:\n" + format_table(section_rows, list(section_rows[0])))
        atomic_write_text(output_dir / f"{name}.csv", to_csv(section_rows))
    write_json(output_dir / "benchmark.json", results)
    atomic_write_text(output_dir / "benchmark.csv", to_csv(rows))
    log.info("wrote %s", output_dir)
    return results


@hydra.main(config_path="../configs", config_name="benchmark", version_base="1.3")
def main(cfg: DictConfig) -> None:
    """Command-line entry point."""
    run(cfg)


if __name__ == "__main__":
    main()
