"""Artifact report for one model + upsampler (Hydra recipe): tones, phase gains, overlap, figures.

    python recipes/analyze.py                                  # HiFi-GAN V1, transposed conv
    python recipes/analyze.py -m \
        upsampler=transposed,nearest_conv,linear_conv,subpixel,subpixel_icnr
    python recipes/compare.py runs=multirun/analyze/<date>     # then one figure + table

For every seed in ``seeds`` the generator is built at random initialisation (or once from
``checkpoint``), weight norm folded, and measured with ``upsampler.analysis``:
``tonal_artifacts`` (constant and white-noise probes through the whole generator) and,
per upsampling layer, the phase gains of the linearised layer (``stack_response``) and
their imbalance, and the aliasing of the last stage (a tone sweep at its input rate,
``generator_stage_aliasing``; BigVGAN also without its anti-aliasing filters, the same
weights). ``report.json`` holds the numbers; the PNG figures are the overlap map
(transposed layers), the phase-gain heatmaps, the averaged spectrum with the expected tones,
and the spectrogram of the generator's output for the bundled speech recording.
"""

from __future__ import annotations

import logging
import sys
import math
import statistics
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import hydra
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig
from torch import nn
from tqdm import tqdm

from upsampler.analysis import (
    generator_stage_aliasing,
    vocoded_pause_lines,
    overlap_map,
    phase_overlap,
    plots,
    stack_response,
    tonal_artifacts,
)
from upsampler.audio import BUNDLED_SPEECH, copy_synthesis, load_audio
from upsampler.recipe_support.build import build_generator, check_model_matches_audio
from upsampler.recipe_support.front_end import checkpoint_front_end
from upsampler.recipe_support.errors import (
    RecipeError,
    check_run_dir_override,
    one_line,
    run_or_exit,
)
from upsampler._atomic import write_json
from upsampler.analysis.figures import save_png
from upsampler.training.artifacts import (
    SILENCE_LOG_LEVEL,
    probe_tonal_excess,
    silence_level_dbfs,
)
from upsampler.recipe_support.recipe_options import check_analyze_options, check_writable_dir

log = logging.getLogger("analyze")

OVERLAP_INPUT_FRAMES = 6  # input samples per overlap-map figure: edges plus a few periods
PROBES = ("constant", "noise", "period", "layer")  # TonalReport summaries kept per seed


def finite(value: float) -> float | None:
    """``value`` as a float, or None when it is inf/NaN (JSON has no infinity)."""
    value = float(value)
    return value if math.isfinite(value) else None


def layer_rates(strides: list[int], sample_rate: int) -> list[float]:
    """Output sample rate of each layer: ``fs_out / prod(later strides)``."""
    return [sample_rate / math.prod(strides[i + 1:]) for i in range(len(strides))]


def layer_phase_gains(generator: nn.Module, sample_rate: int, max_input_channels: int) -> list[Any]:
    """Linearised phase gains ``(C_in probed, C_out, stride)`` of each upsampling layer."""
    rates = layer_rates(list(generator.upsample_rates), sample_rate)
    return [stack_response(layer, sample_rate=rate, max_input_channels=max_input_channels)
            for layer, rate in zip(generator.ups, rates)]


def overlap_entries(generator: nn.Module) -> list[dict[str, Any]] | None:
    """Per transposed layer: taps per output phase and their max/min ratio (None otherwise)."""
    if generator.upsampler != "transposed":
        return None  # resize and subpixel layers have no overlapping taps
    entries = []
    for index, (layer, stride) in enumerate(zip(generator.ups, generator.upsample_rates)):
        counts = phase_overlap(layer.kernel_size[0], stride, layer.dilation[0], layer.padding[0])
        entries.append({
            "layer": index, "stride": stride, "kernel_size": layer.kernel_size[0],
            "taps_per_phase": counts.tolist(), "ratio": finite(counts.max() / counts.min()),
        })
    return entries


def save_figure(figure: Any, path: Path) -> str:
    """Save a PNG through a temporary name; return its file name."""
    return save_png(figure, path).name


def write_figures(cfg: DictConfig, generator: nn.Module, tonal: Any, responses: list[Any],
                  mel_transform: nn.Module, output_dir: Path) -> list[str]:
    """Every artifact figure for one generator; returns the PNG names.

    The spectrogram is drawn first: a ``speech_seconds`` too short for the mel front end
    or the STFT raises ``RecipeError`` naming it before any file is written.
    """
    kind, names = generator.upsampler, []
    sample_rate = int(mel_transform.sample_rate)
    speech = load_audio(BUNDLED_SPEECH, sample_rate)[: int(cfg.speech_seconds * sample_rate)]
    try:
        with torch.inference_mode():
            wav = copy_synthesis(generator, mel_transform, speech)
        spectrogram = plots.plot_spectrogram(
            wav, sample_rate, int(mel_transform.n_fft), int(mel_transform.hop_length),
            tonal.tone_frequencies, f"Generator output for bundled speech ({kind})",
        )
    except ValueError as error:
        raise RecipeError(
            f"speech_seconds={cfg.speech_seconds} is too short for the spectrogram figure: "
            f"{one_line(error)}"
        ) from error
    if kind == "transposed":
        for index, (layer, stride) in enumerate(zip(generator.ups, generator.upsample_rates)):
            counts = overlap_map(layer.kernel_size[0], stride, OVERLAP_INPUT_FRAMES,
                                 layer.padding[0], layer.output_padding[0], layer.dilation[0])
            title = f"Overlap map, layer {index} (k={layer.kernel_size[0]}, s={stride})"
            names.append(save_figure(plots.plot_overlap(counts, stride, title),
                                     output_dir / f"overlap_layer{index}.png"))
    for index, response in enumerate(responses):
        title = f"Phase gains, layer {index} ({kind}, s={response.strides[0]})"
        names.append(save_figure(plots.plot_phase_gains(response.phase_gains, title),
                                 output_dir / f"phase_gains_layer{index}.png"))
    names.append(save_figure(plots.plot_tonal_spectrum(tonal, f"Averaged power spectrum ({kind})"),
                             output_dir / "tonal_spectrum.png"))
    names.append(save_figure(spectrogram, output_dir / "spectrogram.png"))
    return names


def spread(values: list[float]) -> dict[str, float]:
    """Mean, min and max over seeds."""
    return {"mean": statistics.fmean(values), "min": min(values), "max": max(values)}


def layer_entries(
    generator: nn.Module, imbalances: list[list[Any]], probed: list[int]
) -> list[dict[str, Any]]:
    """Per upsampling layer: median phase-gain imbalance over channel pairs, mean over seeds.

    ``probed[i]`` is how many input channels of layer ``i`` the phase gains were measured on.
    """
    entries = []
    for index, stride in enumerate(generator.upsample_rates):
        ratios = [seed[index].median_ratio for seed in imbalances]
        cvs = [seed[index].median_cv for seed in imbalances]
        entries.append({
            "layer": index, "stride": int(stride),
            "kernel_size": int(generator.upsample_kernel_sizes[index]),
            "probed_input_channels": probed[index],
            "median_max_min_ratio": finite(statistics.fmean(ratios)),
            "median_coefficient_of_variation": statistics.fmean(cvs),
        })
    return entries


def measure(cfg: DictConfig, seeds: list[int | None], mel_transform: nn.Module) -> dict[str, Any]:
    """Tonal excess and per-layer phase gains for every seed; keeps the first seed's objects."""
    sample_rate = int(mel_transform.sample_rate)
    found: dict[str, Any] = {"per_seed": [], "imbalances": [], "aliasing": []}
    bar = tqdm(seeds, desc=f"analyze {cfg.upsampler.kind}", unit="seed", disable=not cfg.progress)
    for seed in bar:
        generator = build_generator(cfg, seed=seed)
        check_model_matches_audio(generator, mel_transform)
        with torch.inference_mode():
            tonal = tonal_artifacts(generator, sample_rate=sample_rate, seed=seed or 0)
        responses = layer_phase_gains(generator, sample_rate, int(cfg.max_input_channels))
        found["per_seed"].append({
            "seed": seed, "constant": tonal.summary_db,
            "noise": tonal.noise_summary_db, "period": tonal.period_summary_db,
            "layer": tonal.layer_summary_db,
        })
        found["aliasing"].append({"seed": seed, **generator_stage_aliasing(generator)})
        found["imbalances"].append([response.imbalance for response in responses])
        if "generator" not in found:
            found.update(generator=generator, tonal=tonal, responses=responses)
    return found


def aliasing_entry(per_seed: list[dict[str, Any]]) -> dict[str, Any]:
    """The last stage's aliasing (dB) over seeds, and without anti-aliasing where it applies."""
    first = per_seed[0]
    entry: dict[str, Any] = {
        "stage": first["stage"], "in_channels": first["in_channels"], "stride": first["stride"],
        "sweep_mean": spread([seed["mean_db"] for seed in per_seed]),
        "near_nyquist": spread([seed["near_nyquist_db"] for seed in per_seed]),
        "near_nyquist_frequency": first["near_nyquist_frequency"],
        "without_anti_alias": None,
        "per_seed": per_seed,
    }
    if first["without_anti_alias"] is not None:
        plain = [seed["without_anti_alias"] for seed in per_seed]
        entry["without_anti_alias"] = {
            "sweep_mean": spread([seed["mean_db"] for seed in plain]),
            "near_nyquist": spread([seed["near_nyquist_db"] for seed in plain]),
        }
    return entry


def output_probes(cfg: DictConfig, generator: nn.Module, mel_transform: nn.Module,
                  ) -> dict[str, Any]:
    """What a listener hears from the (first) generator, beside the relative tonal figures.

    ``silence_mel``: the output level in dBFS (RMS re. full scale 1.0) for the mel of
    digital silence, and the tonal figure with the constant probe at that level.
    ``tonal_by_level``: the tonal figure (constant and noise probes) at each of
    ``cfg.tonal_levels`` (constant value = level, noise std = |level|), min/max over the
    noise seeds ``cfg.tonal_noise_seeds``. ``pause_lines``: the frame-rate lines in the
    pauses of the bundled speech recording (``upsampler.analysis.pause_lines``), or None
    when ``cfg.pause_lines`` is false.
    """
    sample_rate = float(mel_transform.sample_rate)
    levels = []
    with torch.inference_mode():
        for level in cfg.tonal_levels:
            reports = [tonal_artifacts(generator, sample_rate=sample_rate, seed=int(seed),
                                       constant_value=float(level), noise_std=abs(float(level)))
                       for seed in cfg.tonal_noise_seeds]
            levels.append({
                "constant_value": float(level), "noise_std": abs(float(level)),
                "noise_seeds": [int(seed) for seed in cfg.tonal_noise_seeds],
                "constant": spread([report.summary_db for report in reports]),
                "noise": spread([report.noise_summary_db for report in reports]),
            })
        silence = {
            "log_mel_value": SILENCE_LOG_LEVEL,
            "level_dbfs": silence_level_dbfs(generator, int(mel_transform.num_mels)),
            "tonal_excess_db": probe_tonal_excess(generator, sample_rate, SILENCE_LOG_LEVEL),
        }
        pauses = vocoded_pause_lines(generator, mel_transform) if cfg.pause_lines else None
    return {"silence_mel": silence, "tonal_by_level": levels,
            "pause_lines": None if pauses is None else pauses.as_dict()}


def run(cfg: DictConfig, overrides: Sequence[str] | None = None) -> dict[str, Any]:
    """Measure, plot and write ``report.json`` for the configured model and upsampler.

    A checkpoint is measured at its ``config.json``'s front end; ``overrides`` (default: the
    running Hydra app's) that contradict it are refused.
    """
    started = time.perf_counter()
    check_analyze_options(cfg)
    output_dir = check_writable_dir(cfg.output_dir, "output_dir")
    if cfg.num_threads is not None:
        torch.set_num_threads(int(cfg.num_threads))
    try:  # a checkpoint brings its own front end: the audio the tones are measured at
        cfg = checkpoint_front_end(cfg, overrides)
    except ValueError as error:
        raise RecipeError(one_line(error)) from error
    try:
        output_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise RecipeError(f"output_dir {str(output_dir)!r} cannot be created: "
                          f"{one_line(error)}") from error
    seeds = [None] if cfg.checkpoint is not None else [int(seed) for seed in cfg.seeds]
    try:
        mel_transform = instantiate(cfg.audio)
        found = measure(cfg, seeds, mel_transform)
    except Exception as error:  # setup problems end the run with one line, not a traceback
        raise RecipeError(one_line(error)) from error
    generator, tonal, responses = found["generator"], found["tonal"], found["responses"]
    per_seed = found["per_seed"]
    try:
        probes = output_probes(cfg, generator, mel_transform)
    except ValueError as error:
        raise RecipeError(one_line(error)) from error
    report = {
        "upsampler": generator.upsampler,
        "checkpoint": cfg.checkpoint,
        "sample_rate": int(mel_transform.sample_rate),
        "strides": [int(rate) for rate in generator.upsample_rates],
        "upsample_kernel_sizes": [int(k) for k in generator.upsample_kernel_sizes],
        "hop_length": int(generator.hop_length),
        "seeds": seeds,
        "tonal_excess_db": {
            **{key: spread([entry[key] for entry in per_seed]) for key in PROBES},
            "per_seed": per_seed,
            "n_fft": tonal.n_fft,
            "probe": {"constant_value": tonal.constant_value, "noise_std": tonal.noise_std},
            "definition": "constant/noise: loudest line at any multiple of fs/S (S = hop) "
                          "over the white-noise floor; layer: each layer's own tones only",
        },
        **probes,
        "tones": [tone._asdict() for tone in tonal.tones],
        "phase_gain_imbalance": layer_entries(
            generator, found["imbalances"],
            [int(response.phase_gains.shape[0]) for response in responses],  # (C_in probed, ...)
        ),
        "overlap": overlap_entries(generator),
        "aliasing_db": aliasing_entry(found["aliasing"]),
        "figures": [],
    }
    if cfg.figures:
        report["figures"] = write_figures(
            cfg, generator, tonal, responses, mel_transform, output_dir
        )
    report["seconds"] = time.perf_counter() - started
    write_json(output_dir / "report.json", report)
    excess, aliasing = report["tonal_excess_db"], report["aliasing_db"]
    plain = aliasing["without_anti_alias"]
    lines = report["pause_lines"]
    log.info("%s: tonal excess %.1f dB (constant), %.1f dB (noise); silence mel out %.1f dBFS; "
             "pause lines %s; aliasing of the last stage %.1f dB (sweep mean)%s in %.1f s; "
             "report at %s",
             report["upsampler"], excess["constant"]["mean"], excess["noise"]["mean"],
             report["silence_mel"]["level_dbfs"],
             "not measured" if lines is None else
             f"{100 * lines['line_fraction']:.1f} % (input {100 * lines['input_line_fraction']:.1f} %)",
             aliasing["sweep_mean"]["mean"],
             "" if plain is None else f", {plain['sweep_mean']['mean']:.1f} dB without anti-aliasing",
             report["seconds"], output_dir / "report.json")
    return report


@hydra.main(config_path="../configs", config_name="analyze", version_base="1.3")
def main(cfg: DictConfig) -> None:
    """Command-line entry point: a setup problem exits with status 1 and one log line."""
    run_or_exit(run, cfg, log)


if __name__ == "__main__":
    check_run_dir_override(sys.argv)
    main()
