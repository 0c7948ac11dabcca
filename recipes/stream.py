"""Streaming in real time: latency, compute per chunk and deadline misses by chunk size (Hydra).

    python recipes/stream.py                        # V1 and V3, chunks 1 and 8, eager and onnx
    python recipes/stream.py realtime=false         # back to back, deadlines on a simulated clock
    python recipes/stream.py runtimes=[eager] chunk_frames=[1,4,16] width=128
    python recipes/stream.py docs.enabled=true      # + the tables -> docs/streaming.md

Each preset is built untrained (``seed``), weight norm folded, and one random mel of
``mel_frames`` frames is cut into chunks of each ``chunk_frames``. Runtimes: ``eager``
(``StreamingGenerator``) and ``onnx`` (``export_streaming`` writes the step for that chunk
size into a temporary folder of the run's output directory, ``OnnxStream`` runs it). Every
stream first goes over the whole mel once and must equal ``generator(mel)`` within ``atol``,
or the run stops naming the difference; that pass is the warm-up, and the timed pass runs
the same session on the same file. With ``realtime`` chunk ``k`` is fed at ``k * chunk * hop
/ sample_rate`` (``upsampler.recipe_support.benchmarks.realtime`` says how misses are told).

Per (preset, runtime, chunk): the algorithmic latency ((look-ahead + chunk) frames, in ms),
compute per chunk p50 / p99, the flush, deadline misses and compute per second of audio;
per preset, the offline ``generator(mel)`` compute per second of audio. Writes
``stream.json`` into ``output_dir``; ``docs.enabled=true`` writes ``docs.output`` too, headed
by the command, date, torch version, CPU and threads.
"""

from __future__ import annotations

import importlib.util
import logging
import platform
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any, Callable

import hydra
import torch
from omegaconf import DictConfig, OmegaConf

from upsampler import HiFiGANGenerator, StreamingGenerator
from upsampler._atomic import atomic_write_text, write_json
from upsampler.recipe_support.benchmarks.realtime import MS, Schedule, feed, summary
from upsampler.recipe_support.benchmarks.report import check_docs_file
from upsampler.recipe_support.benchmarks.stream_report import (
    RECIPE,
    STREAM_MARK,
    streaming_markdown,
)
from upsampler.recipe_support.errors import (
    RecipeError,
    check_run_dir_override,
    one_line,
    run_or_exit,
)
from upsampler.recipe_support.provenance import (
    command_line,
    cpu_name,
    environment_prefix,
    load_note,
    provenance,
)
from upsampler.recipe_support.recipe_options import check_stream_options, check_writable_dir

log = logging.getLogger("stream")
ONNX_PACKAGES = ("onnx", "onnxscript", "onnxruntime")  # export_streaming's and OnnxStream's
ONNX_LOG_ERRORS_ONLY = 3  # onnxruntime's logger severity: its constant-folding notes are noise
EXPORT_ERRORS = (RuntimeError, ValueError, TypeError, ImportError, OSError)


def check_onnx_packages(runtimes: list[str]) -> None:
    """``RecipeError`` when ``onnx`` is asked for and a package it needs is missing."""
    missing = [name for name in ONNX_PACKAGES if importlib.util.find_spec(name) is None]
    if "onnx" in runtimes and missing:
        raise RecipeError(f"runtimes includes 'onnx', which needs {missing} (pip install "
                          f"'upsampler[onnx]'); install them or set runtimes=[eager]")


def build(preset: str, width: int | None, seed: int) -> HiFiGANGenerator:
    """The untrained ``preset`` (``width``: its upsample_initial_channel), weight norm folded."""
    torch.manual_seed(seed)
    widths = {} if width is None else {"upsample_initial_channel": width}
    generator = HiFiGANGenerator.from_preset(preset, **widths).eval()
    generator.remove_weight_norm()
    return generator


def offline(generator: HiFiGANGenerator, mel: torch.Tensor,
            reps: int) -> tuple[torch.Tensor, float]:
    """``generator(mel)`` (the first call, untimed: the warm-up) and the median seconds of
    ``reps`` more."""
    expected = generator(mel)
    seconds = []
    for _ in range(reps):
        began = time.perf_counter()
        generator(mel)
        seconds.append(time.perf_counter() - began)
    return expected, statistics.median(seconds)


def open_stream(runtime: str, generator: HiFiGANGenerator, chunk: int, cfg: DictConfig,
                folder: Path, label: str) -> tuple[Any, Callable[[torch.Tensor], Any]]:
    """The stream of ``runtime`` for chunks of ``chunk`` frames, and how a mel becomes its input."""
    if runtime == "eager":
        return StreamingGenerator(generator, cfg.sample_rate), lambda mel: mel
    import onnxruntime

    from upsampler.export import OnnxStream, export_streaming, weights_fingerprint

    onnxruntime.set_default_logger_severity(ONNX_LOG_ERRORS_ONLY)
    path = folder / f"{label.replace(' ', '_')}.onnx"
    log.info("%s: exporting the step to %s", label, path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the exporter's deprecation notes, not ours
            export_streaming(generator, chunk, path, sample_rate=cfg.sample_rate)
        stream = OnnxStream(path, num_threads=cfg.num_threads, chunk_frames=chunk,
                            fingerprint=weights_fingerprint(generator))
    except EXPORT_ERRORS as error:
        raise RecipeError(f"{label}: the exported step could not be written or opened: "
                          f"{one_line(error)}") from error
    return stream, lambda mel: mel.numpy()


def difference(outputs: list[Any], expected: torch.Tensor, label: str) -> float:
    """Largest absolute difference of the concatenated ``outputs`` from ``expected``."""
    pieces = [torch.as_tensor(piece) for piece in outputs]
    got = torch.cat(pieces, dim=-1)
    if got.shape != expected.shape:
        raise RecipeError(f"{label}: the stream gave {tuple(got.shape)} samples, "
                          f"generator(mel) {tuple(expected.shape)}")
    return (got - expected).abs().max().item()


def measure(preset: str, runtime: str, chunk: int, generator: HiFiGANGenerator,
            mel: torch.Tensor, expected: torch.Tensor, cfg: DictConfig,
            folder: Path) -> dict[str, Any]:
    """One row: verify the stream against ``expected``, then time it (see the docstring)."""
    label = f"{preset} {runtime} chunk {chunk}"
    stream, as_input = open_stream(runtime, generator, chunk, cfg, folder, label)
    hop = generator.hop_length
    schedule = Schedule.of(cfg.mel_frames, chunk, hop, cfg.sample_rate)
    pieces = schedule.pieces(as_input(mel))
    worst = 0.0
    for paced in (False, cfg.realtime):  # the check (and warm-up), then the timed pass
        stream.reset()
        result = feed(stream.step, stream.flush, pieces, schedule, paced)
        diff = difference(result.outputs, expected, label)
        if not diff <= cfg.atol:
            raise RecipeError(f"{label}: streamed output differs from generator(mel) by "
                              f"{diff:.2e}, more than atol={cfg.atol:g}")
        worst = max(worst, diff)
    look_ahead = StreamingGenerator(generator, cfg.sample_rate).look_ahead_frames
    frame_ms = hop / cfg.sample_rate * MS
    audio_seconds = cfg.mel_frames * hop / cfg.sample_rate
    return {"preset": preset, "runtime": runtime, "chunk_frames": chunk,
            "chunk_ms": chunk * frame_ms, "look_ahead_frames": look_ahead,
            "latency_ms": (look_ahead + chunk) * frame_ms,
            **summary(result, schedule, audio_seconds), "max_abs_diff": worst,
            # the exported step's own delay (samples), for the JSON reader: eager has none
            "step_delay_samples": getattr(stream, "delay", None)}


def measure_preset(preset: str, cfg: DictConfig, folder: Path) -> dict[str, Any]:
    """Every (runtime, chunk) row of ``preset`` and its offline reference."""
    generator = build(preset, cfg.width, cfg.seed)
    mel = torch.randn(1, generator.num_mels, cfg.mel_frames,
                      generator=torch.Generator().manual_seed(cfg.seed))
    audio_seconds = cfg.mel_frames * generator.hop_length / cfg.sample_rate
    rows = []
    with torch.inference_mode():
        expected, seconds = offline(generator, mel, cfg.offline_reps)
    log.info("%s offline: %.3f s of compute per second of audio", preset, seconds / audio_seconds)
    for runtime in cfg.runtimes:
        for chunk in cfg.chunk_frames:
            with torch.inference_mode(runtime == "eager"):  # the exporter needs autograd's tensors
                row = measure(preset, runtime, chunk, generator, mel, expected, cfg, folder)
            rows.append(row)
            log.info("%s %s chunk %d: latency %.0f ms, compute per chunk p50 %.2f ms p99 %.2f "
                     "ms, flush %.1f ms, %d/%d deadlines missed, %.3f s per second of audio",
                     preset, runtime, chunk, row["latency_ms"], row["p50_ms"], row["p99_ms"],
                     row["flush_ms"], row["misses"], row["chunks"],
                     row["compute_per_audio_second"])
    return {"preset": preset, "width": generator.upsample_initial_channel,
            "hop_length": generator.hop_length, "look_ahead_frames": rows[0]["look_ahead_frames"],
            "offline_ms": seconds * MS, "offline_per_audio_second": seconds / audio_seconds,
            "rows": rows}


def run(cfg: DictConfig) -> dict[str, Any]:
    """Measure every (preset, runtime, chunk) of ``cfg``; return (and write) the results.

    Every option is checked first, ``output_dir`` must be writable, with ``docs.enabled``
    so must ``docs.output``'s folder (a file already there must be one this recipe wrote),
    and ``runtimes`` with ``onnx`` needs the ONNX packages.
    """
    check_stream_options(cfg)
    output_dir = check_writable_dir(cfg.output_dir, "output_dir")
    docs = Path(cfg.docs.output).expanduser() if cfg.docs.enabled else None
    if docs is not None:
        check_writable_dir(docs.parent, "docs.output's folder")
        try:
            check_docs_file(docs, STREAM_MARK, RECIPE)
        except ValueError as error:
            raise RecipeError(str(error)) from error
    check_onnx_packages(list(cfg.runtimes))
    output_dir.mkdir(parents=True, exist_ok=True)
    threads_before = torch.get_num_threads()
    torch.set_num_threads(cfg.num_threads)
    stamp = provenance(environment_prefix() + command_line()) + load_note()  # at num_threads
    try:
        with tempfile.TemporaryDirectory(dir=output_dir, prefix="onnx-steps-") as folder:
            presets = [measure_preset(preset, cfg, Path(folder)) for preset in cfg.presets]
    finally:
        torch.set_num_threads(threads_before)
    results = {
        "environment": {"torch": torch.__version__, "python": platform.python_version(),
                        "cpu": cpu_name(), "num_threads": cfg.num_threads},
        "config": OmegaConf.to_container(cfg, resolve=True),
        "presets": presets,
    }
    write_json(output_dir / "stream.json", results)
    log.info("wrote %s", output_dir / "stream.json")
    if docs is not None:
        atomic_write_text(docs, streaming_markdown(results, stamp))
        log.info("wrote %s", docs)
    return results


@hydra.main(config_path="../configs", config_name="stream", version_base="1.3")
def main(cfg: DictConfig) -> None:
    """Command-line entry point: a bad option or folder exits with status 1 and one line."""
    run_or_exit(run, cfg, log)


if __name__ == "__main__":
    check_run_dir_override(sys.argv)
    main()
