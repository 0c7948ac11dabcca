"""``docs/streaming.md``: the stream recipe's real-time figures as Markdown, one table a preset.

The file is rewritten whole by each run and starts with :data:`STREAM_MARK`; a file at the
path without it is refused before any work (``report.check_docs_file`` with this mark).
Cells are written as in ``docs/benchmarks.md`` (:mod:`.report_cells`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from upsampler.recipe_support.benchmarks.report_cells import sig, table

STREAM_MARK = ("<!-- Written by recipes/stream.py docs.enabled=true; rewritten whole by each "
               "run. Edit the recipe, not this file. -->")
RECIPE = "stream"
HEADINGS = ["runtime", "chunk (frames)", "chunk (ms)", "latency (ms)",
            "compute / chunk p50 (ms)", "p99 (ms)", "flush (ms)", "deadline misses",
            "compute / audio s"]

COLUMNS = (
    "**latency**: algorithmic latency, (look-ahead + chunk) frames x hop / sample rate: a "
    "frame's audio cannot be final before the chunk holding it and the look-ahead frames "
    "after it have arrived (look-ahead from `StreamingGenerator.look_ahead_frames`; the "
    "exported step is the same model, so the same number); compute is not in it. "
    "**compute / chunk p50, p99**: the wall time of each `step` call that processes a chunk, "
    "median and 99th percentile (linear interpolation: with fewer than 100 chunks the p99 "
    "lies near the slowest call). **flush**: the closing `flush()` once the last chunk is in "
    "(the exported step runs silent chunks until its delay is out). **deadline misses**: "
    "chunks whose output was ready after their deadline, the next chunk's arrival (arrival "
    "+ chunk duration), of all chunks. **compute / audio s**: the stream's whole compute, "
    "every step and the flush, over the audio's duration (the real-time factor: below 1 "
    "keeps up on average, but only a chunk that misses no deadline plays without a gap)."
)


def pace(realtime: bool) -> str:
    """How the chunks were fed, and where a chunk's finish time came from."""
    if realtime:
        return ("Chunks were fed at real-time pace: chunk k at k x the chunk's duration (the "
                "recipe sleeps until then), each finish read off the wall clock.")
    return ("Chunks were fed back to back (`realtime=false`); each finish is put on a "
            "simulated real-time clock: a chunk starts at its arrival or when the one before "
            "it finished, whichever is later, and takes its measured compute.")


def setup(results: Mapping[str, Any]) -> str:
    """The paragraph on what was streamed, how it was checked and how it was fed."""
    cfg, first = results["config"], results["presets"][0]
    seconds = cfg["mel_frames"] * first["hop_length"] / cfg["sample_rate"]
    worst = max(row["max_abs_diff"] for preset in results["presets"] for row in preset["rows"])
    return (
        f"Untrained presets (seed {cfg['seed']}) with weight norm folded; one random mel of "
        f"{cfg['mel_frames']} frames "
        f"({seconds:.2f} s of audio at hop {first['hop_length']}, {cfg['sample_rate']} Hz), "
        f"batch 1, {cfg['num_threads']} thread(s). `eager`: `StreamingGenerator.step` per "
        f"chunk under `torch.inference_mode()`; `onnx`: the step `export_streaming` wrote for that chunk size, run by "
        f"`OnnxStream`. Before timing, each stream's output over the whole mel was checked "
        f"against `generator(mel)` (largest difference {worst:.1e}, allowed "
        f"{cfg['atol']:g}); that pass is the warm-up, and the timed pass runs the same "
        f"session on the same file. {pace(cfg['realtime'])}"
    )


def misses(row: Mapping[str, Any]) -> str:
    return f"{row['misses']} / {row['chunks']} ({row['miss_percent']:.1f} %)"


def preset_section(preset: Mapping[str, Any], offline_reps: int) -> list[str]:
    """One preset's heading, table and offline reference line."""
    body = [[row["runtime"], str(row["chunk_frames"]), sig(row["chunk_ms"]),
             sig(row["latency_ms"]), sig(row["p50_ms"]), sig(row["p99_ms"]),
             sig(row["flush_ms"]), misses(row), sig(row["compute_per_audio_second"])]
            for row in preset["rows"]]
    return [
        f"## HiFi-GAN {preset['preset'].upper()} (width {preset['width']}, look-ahead "
        f"{preset['look_ahead_frames']} frames)", "",
        *table(HEADINGS, body), "",
        f"Offline `generator(mel)` on the whole mel, for reference: "
        f"{sig(preset['offline_per_audio_second'])} s of compute per second of audio "
        f"(median of {offline_reps} calls, eager).", "",
    ]


def streaming_markdown(results: Mapping[str, Any], stamp: str) -> str:
    """The whole file: mark, title, ``stamp`` (provenance), setup, columns, one table a preset."""
    presets: Sequence[Mapping[str, Any]] = results["presets"]
    lines = [STREAM_MARK, "", "# Streaming in real time", "", stamp, "", setup(results), "",
             COLUMNS, ""]
    for preset in presets:
        lines += preset_section(preset, results["config"]["offline_reps"])
    return "\n".join(lines).rstrip("\n") + "\n"


__all__ = ["HEADINGS", "RECIPE", "STREAM_MARK", "streaming_markdown"]
