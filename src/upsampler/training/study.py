"""The upsampler study's report: curves against steps, the final-step table, probe spectra.

One training run per upsampler kind writes ``metrics.jsonl`` (``upsampler.training.monitor``):
``validation`` records carry the held-out metrics and the tonal excess, ``train`` records the
losses and ``steps_per_second``. This module reads them back and writes, atomically:

* ``figures/<metric>.png``: every kind's validation curve of one metric against steps;
* ``figures/spectrum_<kind>.png``: the generator's output spectrum for each probe mel, the
  expected tone frequencies marked;
* ``study.json`` / ``study.md``: one row per kind at its final step.
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from upsampler.files import atomic_write_text, save_png, write_json
from upsampler.training.monitor import METRICS_FILE

CURVE_METRICS = {  # metric key in metrics.jsonl -> axis label
    "tonal_constant_db": "tonal excess, constant probe (dB)",
    "tonal_noise_db": "tonal excess, white-noise probe (dB)",
    "stoi": "held-out STOI",
    "pesq": "held-out PESQ (wideband)",
    "mel_l1": "held-out mel L1",
}
FIGURE_SIZE = (8.0, 5.0)  # inches
SPECTRUM_FLOOR = 1e-20  # power added before the log: silent bins stay finite
DB_PER_BEL = 10.0
TABLE_COLUMNS = (  # row key -> markdown header
    ("kind", "kind"), ("steps", "steps"),
    ("tonal_constant_db_start", "tonal const. step 0 (dB)"),
    ("tonal_constant_db", "tonal const. end (dB)"),
    ("tonal_noise_db_start", "tonal noise step 0 (dB)"),
    ("tonal_noise_db", "tonal noise end (dB)"),
    ("silence_excess_db", "silence mel tones (dB)"),
    ("constant_excess_db", "constant mel tones (dB)"),
    ("stoi", "STOI"), ("pesq", "PESQ"), ("mel_l1", "mel L1"),
    ("warmup_steps_per_second", "steps/s warm-up"),
    ("adversarial_steps_per_second", "steps/s with disc."), ("minutes", "wall-clock (min)"),
)


@dataclass(frozen=True)
class ProbeSpectrum:
    """One probe mel through one generator: its name, spectrum and tonal excess (or None)."""

    name: str
    frequencies: np.ndarray  # (F,) Hz
    power: np.ndarray  # (F,)
    excess_db: float | None


def read_records(run_dir: Path) -> list[dict[str, Any]]:
    """Every record of ``<run_dir>/metrics.jsonl`` in file order."""
    path = Path(run_dir) / METRICS_FILE
    if not path.is_file():
        raise ValueError(f"run folder {run_dir} holds no {METRICS_FILE}; was it trained?")
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()
            if line.strip()]


def curve(records: Sequence[Mapping[str, Any]], metric: str) -> tuple[list[int], list[float]]:
    """(steps, values) of ``metric`` over the validation records that hold a number for it."""
    points = [(int(r["step"]), float(r[metric])) for r in records
              if r.get("kind") == "validation" and isinstance(r.get(metric), (int, float))]
    return [step for step, _ in points], [value for _, value in points]


def _median_rate(records: Sequence[Mapping[str, Any]], first: int, last: float) -> float | None:
    """Median ``steps_per_second`` of the train records logged at steps in ``[first, last]``.

    The median: the few intervals that hold a validation or a checkpoint are slower.
    """
    rates = [float(r["steps_per_second"]) for r in records
             if r.get("kind") == "train" and first <= int(r["step"]) <= last
             and isinstance(r.get("steps_per_second"), (int, float))]
    return statistics.median(rates) if rates else None


def summary_row(kind: str, records: Sequence[Mapping[str, Any]], train_seconds: float,
                probes: Sequence[ProbeSpectrum], warmup_steps: int) -> dict[str, Any]:
    """The table row of one kind: final-step metrics, tonal excess at step 0 and end, speed.

    Speed is given apart for the warm-up (generator alone) and after the discriminators join
    at ``warmup_steps`` (a step then also trains them); ``minutes`` is the run's wall clock,
    validations included.
    """
    validations = [r for r in records if r.get("kind") == "validation"]
    if not validations:
        raise ValueError(f"kind {kind!r}: metrics.jsonl holds no validation record")
    first, last = validations[0], validations[-1]
    row: dict[str, Any] = {"kind": kind, "steps": int(last["step"])}
    for key in ("tonal_constant_db", "tonal_noise_db"):
        row[f"{key}_start"] = first.get(key) if int(first["step"]) == 0 else None
        row[key] = last.get(key)
    for key in ("stoi", "pesq", "mel_l1"):
        row[key] = last.get(key)
    for probe in probes:
        if probe.excess_db is not None:
            row[f"{probe.name}_excess_db"] = probe.excess_db
    row["warmup_steps_per_second"] = _median_rate(records, 0, warmup_steps)
    row["adversarial_steps_per_second"] = _median_rate(records, warmup_steps + 1, math.inf)
    row["minutes"] = train_seconds / 60.0
    return row


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) < 10 else f"{value:.1f}"
    return str(value)


def markdown_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """One markdown row per kind, the columns of ``TABLE_COLUMNS``."""
    header = "| " + " | ".join(title for _, title in TABLE_COLUMNS) + " |"
    rule = "|" + "---|" * len(TABLE_COLUMNS)
    body = ["| " + " | ".join(_cell(row.get(key)) for key, _ in TABLE_COLUMNS) + " |"
            for row in rows]
    return "\n".join([header, rule, *body]) + "\n"


def metric_figure(curves: Mapping[str, tuple[list[int], list[float]]], metric: str,
                  join_step: int | None = None) -> Figure:
    """Every kind's curve of ``metric`` against training steps; a dashed line at ``join_step``."""
    figure = Figure(figsize=FIGURE_SIZE, layout="constrained")
    ax = figure.subplots()
    if join_step is not None:
        ax.axvline(join_step, color="gray", linestyle="--", linewidth=0.8,
                   label="discriminators join")
    for kind, (steps, values) in curves.items():
        ax.plot(steps, values, marker="o", markersize=3, label=kind)
    ax.set_xlabel("training step")
    ax.set_ylabel(CURVE_METRICS.get(metric, metric))
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small")
    return figure


def spectrum_figure(kind: str, probes: Sequence[ProbeSpectrum], tones: np.ndarray) -> Figure:
    """One panel per probe mel: output power (dB) with the expected tones as dotted lines."""
    figure = Figure(figsize=(FIGURE_SIZE[0], 2.5 * len(probes)), layout="constrained")
    axes = np.atleast_1d(figure.subplots(len(probes), 1, sharex=True))
    for ax, probe in zip(axes, probes):
        ax.plot(probe.frequencies, DB_PER_BEL * np.log10(probe.power + SPECTRUM_FLOOR),
                linewidth=0.8)
        for tone in tones:
            ax.axvline(tone, color="tab:red", linestyle=":", linewidth=0.8)
        excess = "" if probe.excess_db is None else f", tonal excess {probe.excess_db:.1f} dB"
        ax.set_title(f"{kind}: {probe.name} mel{excess}", fontsize="medium")
        ax.set_ylabel("power (dB)")
    axes[-1].set_xlabel("frequency (Hz); dotted: expected tones")
    return figure


def write_report(output_dir: Path, rows: Sequence[Mapping[str, Any]],
                 curves: Mapping[str, Mapping[str, tuple[list[int], list[float]]]],
                 spectra: Mapping[str, tuple[Sequence[ProbeSpectrum], np.ndarray]],
                 header: str = "", join_step: int | None = None) -> list[Path]:
    """Figures, ``study.json`` and ``study.md`` under ``output_dir``; the paths written.

    ``curves`` maps metric -> kind -> (steps, values); ``spectra`` kind -> (probes, tones);
    ``join_step`` (the warm-up's end) is marked on the curves.
    """
    output_dir = Path(output_dir)
    figures = output_dir / "figures"
    figures.mkdir(parents=True, exist_ok=True)
    written = [save_png(metric_figure(by_kind, metric, join_step), figures / f"{metric}.png")
               for metric, by_kind in curves.items()]
    written += [save_png(spectrum_figure(kind, probes, tones), figures / f"spectrum_{kind}.png")
                for kind, (probes, tones) in spectra.items()]
    names = "\n".join(f"![{path.stem}](figures/{path.name})" for path in written)
    written.append(write_json(output_dir / "study.json", {"rows": list(rows)}))
    written.append(atomic_write_text(output_dir / "study.md",
                                     f"{header}\n{markdown_table(rows)}\n{names}\n"))
    return written


__all__ = ["CURVE_METRICS", "ProbeSpectrum", "curve", "markdown_table", "metric_figure",
           "read_records", "spectrum_figure", "summary_row", "write_report"]
