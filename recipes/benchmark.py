"""Time ``upsampler.ConvTranspose1d`` against ``torch.nn.ConvTranspose1d`` (Hydra recipe).

    python recipes/benchmark.py                          # full table, 2 threads
    python recipes/benchmark.py quick=true               # smoke run
    python recipes/benchmark.py num_threads=1 generator.enabled=true
    python recipes/benchmark.py training.enabled=true      # one training step of the demo model
    python recipes/benchmark.py streaming.enabled=true   # + streaming V1 / V3 vs offline
    python recipes/benchmark.py docs.enabled=true ...    # + the tables -> docs/benchmarks.md

Both layers hold the same weights and see the same input; calls alternate between them
(ours first on even reps, native first on odd ones) and each time is the median of the
reps (``ratio_of_minima`` compares the fastest reps instead, a check on a busy machine).
Forward runs under ``torch.no_grad()``; forward+backward computes every gradient.
Prints ratios ours / native (below 1: ours is faster), their geometric mean over the
HiFi-GAN shapes, and our column buffer ``B * C_out * K * T`` floats, the extra memory our
op holds beyond the output. Writes ``benchmark.json`` and ``benchmark.csv`` (plus
``generator.csv`` and one ``<section>.csv`` per enabled section) into ``output_dir``.

``docs.enabled=true`` also writes every measured table as Markdown to ``docs.output``
(``docs/benchmarks.md``), each section headed by its command, date, torch version, CPU and
thread count; sections this run did not measure keep the tables an earlier run wrote there
(``upsampler.recipe_support.benchmarks.report``).
"""

from __future__ import annotations

import csv
import io
import logging
import math
import platform
import statistics
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import hydra
import torch
from omegaconf import DictConfig, OmegaConf
from torch import nn
from tqdm import tqdm

from upsampler import ConvTranspose1d
from upsampler._atomic import atomic_write_text, write_json
from upsampler.lengths import exact_padding
from upsampler.models.hifigan import PRESETS
from upsampler.recipe_support.benchmarks.layer import (
    bench_compile,
    bench_crossover,
    bench_long_kernel,
    bench_overhead,
)
from upsampler.recipe_support.benchmarks.deployment import bench_onnx
from upsampler.recipe_support.benchmarks.report import check_docs_file, merged_markdown
from upsampler.recipe_support.benchmarks.model_sections import (
    bench_bigvgan,
    bench_generator,
    bench_streaming,
    bench_training,
)
from upsampler.recipe_support.benchmarks.timing import interleaved_times, step
from upsampler.recipe_support.errors import RecipeError, check_run_dir_override, run_or_exit
from upsampler.recipe_support.provenance import (
    command_line,
    cpu_name,
    environment_prefix,
    load_note,
    provenance,
)
from upsampler.recipe_support.recipe_options import check_benchmark_options, check_writable_dir

log = logging.getLogger("benchmark")
MIB = 2**20


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
    """Run the benchmark described by ``cfg``; return (and write) its results.

    Every option of every section is checked first, and ``output_dir`` must be writable
    (with ``docs.enabled``, so must ``docs.output``'s folder, and a file already there must
    be one this recipe wrote).
    """
    check_benchmark_options(cfg)
    output_dir = check_writable_dir(cfg.output_dir, "output_dir")
    docs = Path(cfg.docs.output).expanduser() if cfg.docs.enabled else None
    if docs is not None:
        check_writable_dir(docs.parent, "docs.output's folder")
        try:
            check_docs_file(docs)
        except ValueError as error:
            raise RecipeError(str(error)) from error
    if cfg.quick:
        cfg = OmegaConf.merge(cfg, cfg.quick_settings)
    threads_before = torch.get_num_threads()
    torch.set_num_threads(cfg.num_threads)
    torch.manual_seed(cfg.seed)
    stamp = provenance(environment_prefix() + command_line()) + load_note()  # at num_threads
    try:
        shapes = hifigan_shapes(list(cfg.hifigan_presets))
        shapes += [LayerShape(**spec, hifigan=False) for spec in cfg.extra_layers]
        cases = [(shape, frames, batch, mode) for shape in shapes for frames in cfg.mel_frames
                 for batch in cfg.batch_sizes for mode in cfg.modes]
        rows = [bench_layer(*case, cfg) for case in
                tqdm(cases, desc="layers", disable=not cfg.progress)]
        generator_rows = bench_generator(cfg) if cfg.generator.enabled else []
        sections: dict[str, list[dict[str, Any]]] = {}
        for name, section in SECTIONS.items():
            if cfg[name].enabled:
                log.info("section %s", name)  # a full run takes a while: say where it is
                sections[name] = section(cfg)
    finally:
        torch.set_num_threads(threads_before)
    geomean = {mode: geometric_mean([r["ratio"] for r in rows if r["hifigan"] and r["mode"] == mode])
               for mode in cfg.modes}
    results = {
        "environment": {"torch": torch.__version__, "python": platform.python_version(),
                        "machine": platform.machine(), "cpu": cpu_name(),
                        "num_threads": cfg.num_threads, "device": cfg.device},
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
        if not section_rows:  # a section that could not run has said why
            continue
        print(f"{name}:\n" + format_table(section_rows, list(section_rows[0])))
        atomic_write_text(output_dir / f"{name}.csv", to_csv(section_rows))
    write_json(output_dir / "benchmark.json", results)
    atomic_write_text(output_dir / "benchmark.csv", to_csv(rows))
    log.info("wrote %s", output_dir)
    if docs is not None:
        atomic_write_text(docs, merged_markdown(docs, results, stamp))
        log.info("wrote %s", docs)
    return results


@hydra.main(config_path="../configs", config_name="benchmark", version_base="1.3")
def main(cfg: DictConfig) -> None:
    """Command-line entry point: a bad option or folder exits with status 1 and one line."""
    run_or_exit(run, cfg, log)


if __name__ == "__main__":
    check_run_dir_override(sys.argv)
    main()
