"""Checkerboard and tonal-artifact analysis: numbers and arrays only (plots: ``.plots``).

Public API (all importable from ``upsampler.analysis``):

Overlap (integer numpy arrays; ``overlap``)
    overlap_map(kernel_size, stride, length, padding=0, output_padding=0, dilation=1) -> ndarray[int64]
    stack_overlap_map(kernel_sizes, strides, length, dilations=None) -> ndarray[int64]
    phase_overlap(kernel_size, stride, dilation=1, padding=0) -> ndarray[int64] (stride,)
    overlap_ratio(counts, period, edge=0) -> float
Phase gains (``phase``)
    phase_gains(weight, stride, dilation=1, padding=0) -> ndarray (C_in, C_out, stride)
    layer_phase_gains(layer) -> ndarray (C_in, C_out, stride)
    phase_imbalance(gains) -> PhaseImbalance(max_min_ratio, coefficient_of_variation,
                                             .median_ratio, .median_cv)
Linearised response (``response``)
    stack_response(module, sample_rate=22050.0, strides=None, in_channels=None,
                   max_input_channels=None) -> StackResponse
        (.impulse_response, .lag_zero, .phase_gains, .periodic_component, .frequencies,
         .frequency_response, .strides, .sample_rate, .total_stride, .imbalance)
Spectra and tones (``spectrum``, ``tonal``)
    averaged_power_spectrum(signal, n_fft) -> ndarray (n_fft // 2 + 1,)
    expected_tone_frequencies(strides, sample_rate) -> list[ToneFrequency(layer, multiple, frequency)]
    tone_excess_db(spectrum, tone_bins, period_bins, reference=None, halfwidth=32, guard=1) -> ndarray
    tonal_artifacts(module, sample_rate=22050.0, strides=None, in_channels=None, num_frames=None,
                    n_fft=None, edge_frames=16, noise_batch=1, noise_std=1.0,
                    constant_value=1.0, seed=0, dtype=None) -> TonalReport
        (.summary_db (every multiple of fs_out / S), .layer_summary_db (each layer's own
         tones), .noise_summary_db, .period_summary_db, .period_excess_db,
         .noise_period_excess_db, .constant_value, .noise_std,
         .tones: tuple[ToneExcess(layer, multiple, frequency, noise_excess_db,
                                  constant_excess_db)], .tone_frequencies,
         .frequencies, .noise_spectrum, .constant_spectrum, .n_fft, .strides, .sample_rate)
Frame-rate lines in the pauses of vocoded speech (``pause_lines``)
    pause_lines(input_wav, output_wav, sample_rate, hop_length, input_rate=None) -> PauseLines
        (.line_fraction, .input_line_fraction, .added_fraction, .added_multiples,
         .added_levels_db, .added_level_db, .pauses, .as_dict())
    vocoded_pause_lines(generator, mel_transform, path=None) -> PauseLines (bundled speech)
What a module is (``probe``)
    upsampler_strides(module, strides=None) -> tuple[int, ...]
    input_channels(module, in_channels=None) -> int
Aliasing of a block driven by a pure tone (``aliasing``, ``aliasing_compare``)
    tone_aliasing(module, frequency, in_channels, stride=1, amplitude=1.0, fft_size=1024,
                  margin=256) -> AliasingReport(frequency, aliasing_db, stride, frequencies,
                                                power, wanted)
    aliasing_sweep(module, frequencies, in_channels, ...) -> list[AliasingReport]
    mean_aliasing_db(reports) -> float
    compare_aliasing(frequencies=SWEEP, seed=0) -> (rows, sweeps): HiFi-GAN V1 and
        BigVGAN-base blocks with and without anti-aliasing; format_aliasing_table(rows) -> str
    generator_stage_aliasing(generator, stage=-1, frequencies=SWEEP) -> dict: one stage of a
        generator, and without its anti-aliasing filters where it has them
Literature comparison (``compare``)
    compare_upsamplers(variants=LITERATURE_VARIANTS, strides=(8, 8, 2, 2),
                       channels=(32, 16, 8, 4, 2), sample_rate=22050.0, seeds=(0, 1, 2),
                       num_frames=None) -> list[dict]
    format_table(rows) -> str;  build_stack(kind, strides, kernel_sizes, channels) -> nn.Sequential
    UpsamplerVariant(name, kind, kernel_sizes); LITERATURE_VARIANTS

Modules accepted: one upsampler (``make_upsampler``'s kinds, torch's ConvTranspose1d), an
``nn.Sequential``/``nn.ModuleList`` stack of them, or a generator with ``upsample_rates``
(``HiFiGANGenerator``). Bad input raises ``ValueError`` naming the argument.
"""

from upsampler.analysis.aliasing import (
    AliasingReport,
    aliasing_sweep,
    mean_aliasing_db,
    tone_aliasing,
)
from upsampler.analysis.aliasing_compare import (
    compare_aliasing,
    format_aliasing_table,
    generator_stage_aliasing,
)
from upsampler.analysis.compare import (
    LITERATURE_VARIANTS,
    UpsamplerVariant,
    build_stack,
    compare_upsamplers,
    format_table,
)
from upsampler.analysis.overlap import overlap_map, overlap_ratio, phase_overlap, stack_overlap_map
from upsampler.analysis.pause_lines import PauseLines, pause_lines, vocoded_pause_lines
from upsampler.analysis.phase import PhaseImbalance, layer_phase_gains, phase_gains, phase_imbalance
from upsampler.analysis.probe import input_channels, upsampler_strides
from upsampler.analysis.response import StackResponse, stack_response
from upsampler.analysis.spectrum import (
    ToneFrequency,
    averaged_power_spectrum,
    expected_tone_frequencies,
    tone_excess_db,
)
from upsampler.analysis.tonal import TonalReport, ToneExcess, tonal_artifacts

__all__ = [
    "LITERATURE_VARIANTS", "UpsamplerVariant", "build_stack", "compare_upsamplers",
    "format_table", "overlap_map", "overlap_ratio", "phase_overlap", "stack_overlap_map",
    "PhaseImbalance", "layer_phase_gains", "phase_gains", "phase_imbalance",
    "input_channels", "upsampler_strides", "StackResponse", "stack_response",
    "ToneFrequency", "averaged_power_spectrum", "expected_tone_frequencies", "tone_excess_db",
    "TonalReport", "ToneExcess", "tonal_artifacts",
    "PauseLines", "pause_lines", "vocoded_pause_lines",
    "AliasingReport", "aliasing_sweep", "mean_aliasing_db", "tone_aliasing",
    "compare_aliasing", "format_aliasing_table", "generator_stage_aliasing",
]
