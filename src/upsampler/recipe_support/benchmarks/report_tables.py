"""One table per section of ``docs/benchmarks.md``, from the benchmark recipe's results.

Each renderer takes the results dict and returns the section's title, a paragraph on what
was timed, and its table lines; :data:`RENDERERS` names them in the order of the file.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from upsampler.recipe_support.benchmarks.report_cells import diff, ratio, sig, table

MODE_LABELS = {"forward": "fwd", "forward_backward": "fwd+bwd"}

# (title, what was timed, table lines)
Section = tuple[str, str, list[str]]


def layer_label(row: Mapping[str, Any]) -> str:
    groups = f" g{row['groups']}" if row["groups"] > 1 else ""
    mean = "" if row["hifigan"] else " (not in the mean)"
    return (f"{row['name']} {row['in_channels']}->{row['out_channels']} "
            f"k{row['kernel_size']} s{row['stride']}{groups}{mean}")


def layers_section(results: Mapping[str, Any]) -> Section:
    rows = results["layers"]
    modes = list(dict.fromkeys(row["mode"] for row in rows))
    cells = list(dict.fromkeys((row["mel_frames"], row["batch"]) for row in rows))
    by_key = {(row["name"], row["mel_frames"], row["batch"], row["mode"]): row for row in rows}
    body = []
    for name in dict.fromkeys(row["name"] for row in rows):
        first = next(row for row in rows if row["name"] == name)
        body.append([layer_label(first)] + [
            " / ".join(ratio(by_key[name, frames, batch, mode]["ratio"])
                       if (name, frames, batch, mode) in by_key else "-" for mode in modes)
            for frames, batch in cells])
    means = ", ".join(f"{value:.3f} {MODE_LABELS.get(mode, mode)}"
                      for mode, value in results["geometric_mean_ratio"].items() if value)
    reps = sorted({row["reps"] for row in rows})
    reps_text = str(reps[0]) if reps[0] == reps[-1] else f"{reps[0]}-{reps[-1]}"
    lines = table(["layer (C_in -> C_out, k, s)"]
                  + [f"{frames} fr, B {batch}" for frames, batch in cells],
                  body)
    lines += ["", f"Geometric mean over the HiFi-GAN shapes: **{means}**.", "",
              f"Largest column buffer (`B * C_out * K * T` floats, the extra memory our op "
              f"holds beyond the output): {sig(max(r['column_buffer_mib'] for r in rows))} MiB; "
              f"every cell's is in `benchmark.csv`."]
    what = (f"`upsampler.ConvTranspose1d` over `torch.nn.ConvTranspose1d` (below 1: ours is "
            f"faster), same weights and input, float32, calls interleaved, medians of "
            f"{reps_text} reps; each cell {' / '.join(MODE_LABELS.get(m, m) for m in modes)} "
            f"(forward under `no_grad`; forward+backward computes every gradient). Layer i of a "
            f"preset sees the mel length times the rates before it.")
    return "Layers: ours / torch per shape", what, lines


def generator_section(results: Mapping[str, Any]) -> Section:
    body = [[row["preset"], str(row["mel_frames"]), str(row["batch"]), sig(row["native_ms"]),
             sig(row["ours_ms"]), ratio(row["ratio"]), diff(row["max_abs_diff"])]
            for row in results["generator"]]
    return ("Whole HiFi-GAN generator",
            "One generator (weight norm folded, eval) with our upsamplers against the same "
            "weights with `torch.nn.ConvTranspose1d` as its `ups`; medians of interleaved "
            "reps.",
            table(["preset", "mel frames", "batch", "torch ups (ms)", "ours (ms)",
                   "ours / torch", "max abs diff"], body))


def training_section(results: Mapping[str, Any]) -> Section:
    body = [[f"hop {row['hop']}, {row['parameters']:,} parameters",
             f"{row['batch']} x {row['mel_frames']} frames", sig(row["native_ms"]),
             sig(row["ours_ms"]), ratio(row["ratio"]), ratio(row["ratio_of_minima"])]
            for row in results["training"]]
    return ("One training step",
            "Generator forward + backward (weight norm kept) of the `training.model` "
            "configuration (the demo vocoder's), ours against torch's layers as its "
            "upsamplers; medians of interleaved reps, and the ratio of the fastest reps.",
            table(["model", "batch", "torch ups (ms)", "ours (ms)", "ours / torch",
                   "fastest reps"], body))


def overhead_section(results: Mapping[str, Any]) -> Section:
    body = [[f"`{row['layer']}`", str(row["input_length"]), MODE_LABELS.get(row["mode"],
                                                                           row["mode"]),
             sig(row["native_us"]), sig(row["ours_us"]), ratio(row["ratio"])]
            for row in results["overhead"]]
    return ("Per-call overhead at tiny inputs",
            "Batch 1, a few input steps: what a call costs beyond its arithmetic, ours "
            "against torch, interleaved.",
            table(["layer", "T", "mode", "torch (us)", "ours (us)", "ours / torch"], body))


def crossover_section(results: Mapping[str, Any]) -> Section:
    body = [[row["pair"], str(row["channels"]), str(row["kernel_size"]), str(row["stride"]),
             str(row["input_length"]), MODE_LABELS.get(row["mode"], row["mode"]),
             f"{row['column_values']:,}", sig(row["span_in_strides"]), ratio(row["ratio"])]
            for row in results["crossover"]]
    return ("Crossover of the overlap-add formulations",
            "Each pair of formulations forced in turn on the same layer and input (batch 1): "
            "the ratio is the first's time over the second's (below 1: the first wins). "
            "The op's thresholds between formulations are read from this table.",
            table(["pair", "channels", "k", "s", "T", "mode", "column values",
                   "span (strides)", "first / second"], body))


def long_kernel_section(results: Mapping[str, Any]) -> Section:
    body = [[row["impl"], str(row["rep"]), sig(row["forward_s"]), sig(row["forward_backward_s"]),
             sig(row["forward_extra_mib"]), sig(row["peak_extra_mib"])]
            for row in results["long_kernel"]]
    return ("Long kernel",
            "A kernel of thousands of taps at stride 1 (`long_kernel.*`), ours and torch "
            "each in a fresh process; memory is the peak resident size above the process's "
            "size before the call.",
            table(["impl", "rep", "forward (s)", "forward+backward (s)",
                   "forward peak (MiB)", "peak (MiB)"], body))


def compile_section(results: Mapping[str, Any]) -> Section:
    body = [[row["preset"], str(row["mel_frames"]), sig(row["eager_ms"]), sig(row["compiled_ms"]),
             ratio(row["speedup"]), sig(row["compile_s"]), diff(row["max_abs_diff"])]
            for row in results["compile"]]
    return ("torch.compile",
            "HiFi-GAN inference (ours, weight norm folded), eager against "
            "`torch.compile(model, fullgraph=True)`, batch 1, interleaved; above 1 the "
            "compiled model is faster.",
            table(["preset", "mel frames", "eager (ms)", "compiled (ms)", "eager / compiled",
                   "compile (s)", "max abs diff"], body))


def onnx_section(results: Mapping[str, Any]) -> Section:
    body = [[row["model"], str(row["mel_frames"]), sig(row["eager_ms"]),
             ratio(row["torchscript_ratio"]), ratio(row["ort_dense_ratio"]),
             ratio(row["ort_conv_transpose_ratio"]), diff(row["max_abs_diff"])]
            for row in results["onnx"]]
    return ("Deployment: eager, TorchScript, onnxruntime",
            "Batch 1, weight norm folded; each runtime's median over eager torch's (below 1: "
            "faster than eager): a TorchScript trace, onnxruntime on our dense export and on "
            "the export that writes ONNX's `ConvTranspose` node. Max abs diff: the largest "
            "difference of any runtime from eager.",
            table(["model", "mel frames", "eager torch (ms)", "TorchScript",
                   "onnxruntime, dense graph", "onnxruntime, `ConvTranspose` node",
                   "max abs diff"], body))


BREAKDOWN_LABELS = {"snake": "Snake", "anti_alias_filters": "anti-aliasing filters",
                    "residual_convs": "residual convolutions",
                    "stage_upsamplers": "stage upsamplers",
                    "conv_pre_post": "conv_pre, conv_post", "other": "other",
                    "total": "whole forward"}


def bigvgan_section(results: Mapping[str, Any]) -> Section:
    rows = results["bigvgan"]
    body = [[row["preset"], sig(row["audio_seconds"]), sig(row["native_ms"]), sig(row["ours_ms"]),
             ratio(row["ratio"]), diff(row["max_abs_diff"])] for row in rows]
    lines = table(["preset", "audio (s)", "NVIDIA (ms)", "ours (ms)", "ours / NVIDIA",
                   "max abs diff"], body)
    for row in rows:
        lines += ["", f"Per forward, {sig(row['audio_seconds'])} s of audio (forward hooks, "
                      f"medians):", ""]
        lines += table(["part", "ours (ms)", "NVIDIA (ms)"],
                       [[label, sig(row[f"ours_{key}_ms"]), sig(row[f"reference_{key}_ms"])]
                        for key, label in BREAKDOWN_LABELS.items()])
    return ("BigVGAN against NVIDIA's",
            "BigVGAN (weight norm folded) on our layers against NVIDIA's `bigvgan.BigVGAN` "
            "(`use_cuda_kernel=False`) holding the same weights, interleaved.", lines)


def streaming_section(results: Mapping[str, Any]) -> Section:
    rows = results["streaming"]
    profiled = "products_ms" in rows[0]
    headings = ["preset", "mode", "compute per second of audio (s)", "ratio to offline",
                "max abs diff"]
    if profiled:
        headings += ["profiled (ms)", "matrix products (ms)", "elementwise (ms)",
                     "joins and copies (ms)", "operator calls a step"]
    body = []
    for row in rows:
        mode = row["mode"]  # offline, chunk_<frames>, onnx_chunk_<frames>
        label = mode if mode == "offline" else (
            mode.removeprefix("onnx_").removeprefix("chunk_") + "-frame chunks"
            + (", exported step in onnxruntime" if mode.startswith("onnx_") else ", eager"))
        cells = [row["preset"], label,
                 sig(row["seconds_per_audio_second"]), ratio(row["ratio_to_offline"]),
                 diff(row["max_abs_diff"])]
        if profiled:
            cells += [sig(row[key]) if key in row else "" for key in (
                "profiled_ms", "products_ms", "elementwise_ms", "joins_copies_ms",
                "op_calls_per_step")]
        body.append(cells)
    return ("Streaming against offline",
            "`StreamingGenerator` (eager) and the step `export_streaming` wrote, run by "
            "`OnnxStream` in onnxruntime with the same threads, fed chunks of mel frames "
            "beside one offline forward of the same utterance (weight norm folded, "
            "`inference_mode`), warm-up and flush included; medians of interleaved runs, each "
            "stream checked against offline first (max abs diff). Read the ratio to offline, "
            "taken in the same process, rather than the seconds." + (" The profiled columns come from one call per mode under "
                          "`torch.profiler` (main thread's self time)." if profiled else ""),
            table(headings, body))


RENDERERS: dict[str, Callable[[Mapping[str, Any]], Section]] = {
    "layers": layers_section, "generator": generator_section, "training": training_section,
    "overhead": overhead_section, "crossover": crossover_section,
    "long_kernel": long_kernel_section, "compile": compile_section, "onnx": onnx_section,
    "bigvgan": bigvgan_section, "streaming": streaming_section,
}  # the order of the file


__all__ = ["BREAKDOWN_LABELS", "MODE_LABELS", "RENDERERS", "Section"]
