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

from upsampler.analysis.spectrum import FLOOR_DB
from upsampler._atomic import atomic_write_text, write_json
from upsampler.analysis.figures import save_png
from upsampler.training.monitor import METRICS_FILE

CURVE_METRICS = {  # metric key in metrics.jsonl -> axis label
    "tonal_constant_db": "tonal excess, constant probe (dB)",
    "tonal_noise_db": "tonal excess, white-noise probe (dB)",
    "stoi": "held-out STOI",
    "pesq": "held-out PESQ (wideband)",
    "mel_l1": "held-out mel L1",
}
FIGURE_SIZE = (8.0, 5.0)  # inches
KIND_MARKERS = ("o", "s", "^", "D", "P", "X", "*")  # one per kind: overlapping curves stay told apart
KIND_STYLES = ("-", "--", "-.", ":")
KIND_OFFSET = 0.06  # each kind's points shift sideways by this fraction of the step interval
FLOOR_MARKER = "v"  # a value at the numerical floor, drawn on the plotted floor
FLOOR_GAP_DB = 10.0  # the plotted floor sits this far below the lowest real value
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
    ("silence_dbfs", "silence mel out (dBFS)"),
    ("pause_line_fraction", "pause-line fraction"),
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
    level_dbfs: float | None = None  # output RMS re. full scale 1.0


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
    for key in ("stoi", "pesq", "mel_l1", "pause_line_fraction", "pause_added_fraction",
                "pause_input_line_fraction"):
        row[key] = last.get(key)
    for probe in probes:
        if probe.excess_db is not None:
            row[f"{probe.name}_excess_db"] = probe.excess_db
        if probe.level_dbfs is not None:
            row[f"{probe.name}_dbfs"] = probe.level_dbfs
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
    """Every kind's curve of ``metric`` against training steps; a dashed line at ``join_step``.

    Kinds that share values stay visible: each has its own marker and line style and is
    shifted sideways by ``KIND_OFFSET`` of the validation interval. Values at the tonal
    measure's numerical floor (``FLOOR_DB``: no line at all) are drawn on a plotted floor
    ``FLOOR_GAP_DB`` below the lowest real value, as hollow ``FLOOR_MARKER``s labelled
    "no line (below floor)", instead of squashing the axis down to -150 dB.
    """
    figure = Figure(figsize=FIGURE_SIZE, layout="constrained")
    ax = figure.subplots()
    if join_step is not None:
        ax.axvline(join_step, color="gray", linestyle="--", linewidth=0.8,
                   label="discriminators join")
    real = [v for _, values in curves.values() for v in values if v > FLOOR_DB]
    plotted_floor = (min(real) if real else 0.0) - FLOOR_GAP_DB
    spacings = [np.diff(steps).min() for steps, _ in curves.values() if len(steps) > 1]
    interval = float(min(spacings)) if spacings else 1.0
    floored_any = False
    for index, (kind, (steps, values)) in enumerate(curves.items()):
        shift = (index - (len(curves) - 1) / 2) * KIND_OFFSET * interval
        x = np.asarray(steps, dtype=float) + shift
        y = np.asarray(values, dtype=float)
        floored = y <= FLOOR_DB
        shown = np.where(floored, plotted_floor, y)
        colour = f"C{index % 10}"
        ax.plot(x, shown, marker=KIND_MARKERS[index % len(KIND_MARKERS)], markersize=4,
                linestyle=KIND_STYLES[index % len(KIND_STYLES)], color=colour, label=kind,
                markevery=np.flatnonzero(~floored).tolist())
        if floored.any():
            floored_any = True
            ax.plot(x[floored], shown[floored], FLOOR_MARKER, color=colour, linestyle="none",
                    markerfacecolor="none", markersize=7)
    if floored_any:
        ax.axhline(plotted_floor, color="black", linewidth=0.6, linestyle=":")
        ax.plot([], [], FLOOR_MARKER, color="black", markerfacecolor="none", linestyle="none",
                label=f"no line (below floor; {FLOOR_DB:.0f} dB)")
    ax.set_xlabel("training step (kinds shifted sideways to stay visible)")
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


PERCENT = 100.0
REFERENCE_COLUMNS = (
    "model", "rate / hop", "tonal figure (dB)", "layer tones only (dB)",
    "silence mel tones (dB)", "silence mel out (dBFS)", "pause lines (%)",
    "input's own (%)", "added lines (%)", "added lines re. speech (dB)",
)


def _db(value: Any) -> str:
    return "-" if value is None else f"{float(value):.1f}"


def _spread_cell(entry: Mapping[str, Any]) -> str:
    """``mean [min, max]`` of an analyze spread, or the mean alone when they coincide."""
    if entry["min"] == entry["max"]:
        return f"{entry['mean']:.1f}"
    return f"{entry['mean']:.1f} [{entry['min']:.1f}, {entry['max']:.1f}]"


def reference_markdown(reports: Mapping[str, Mapping[str, Any]],
                       study_rows: Sequence[Mapping[str, Any]]) -> str:
    """Markdown tables of analyze ``report.json`` files (label -> report) beside study rows.

    Table 1: per report the tonal figure (constant probe at 1.0, every multiple of fs/hop;
    mean [min, max] over seeds), the layer-tones-only figure, the silence mel's tonal figure
    and output level (dBFS), and the pause lines of the bundled speech (percent of the pause
    power). Table 2: the tonal figure by probe level, min-max over noise seeds. Table 3: the
    study's final-step rows (figures it logged; "-" where the study did not record one).
    """
    lines = ["| " + " | ".join(REFERENCE_COLUMNS) + " |", "|" + "---|" * len(REFERENCE_COLUMNS)]
    for label, report in reports.items():
        pauses = report.get("pause_lines")
        silence = report.get("silence_mel") or {}
        tonal = report["tonal_excess_db"]
        weights = "init, seeds " + ", ".join(map(str, report["seeds"])) \
            if report.get("checkpoint") is None else f"`{report['checkpoint']}`"
        cells = [f"{label} ({weights})", f"{report['sample_rate']} / {report['hop_length']}",
                 _spread_cell(tonal["constant"]),
                 _spread_cell(tonal["layer"]) if "layer" in tonal else "-",
                 _db(silence.get("tonal_excess_db")), _db(silence.get("level_dbfs"))]
        if pauses is None:
            cells += ["-"] * 4
        else:
            cells += [f"{PERCENT * pauses['line_fraction']:.1f}",
                      f"{PERCENT * pauses['input_line_fraction']:.1f}",
                      f"{PERCENT * pauses['added_fraction']:.1f}",
                      "none" if not pauses["added_multiples"] else _db(pauses["added_level_db"])]
        lines.append("| " + " | ".join(cells) + " |")
    levels = ["| model | constant value | noise std | tonal figure, constant (dB) | "
              "noise probe (dB) |", "|---|---|---|---|---|"]
    for label, report in reports.items():
        for entry in report.get("tonal_by_level", []):
            levels.append(
                f"| {label} | {entry['constant_value']:g} | {entry['noise_std']:g} | "
                f"{entry['constant']['min']:.1f} to {entry['constant']['max']:.1f} | "
                f"{entry['noise']['min']:.1f} to {entry['noise']['max']:.1f} |")
    study = ["| study kind (1200 steps) | tonal const. end (dB) | silence mel tones (dB) | "
             "silence mel out (dBFS) | pause lines (%) |", "|---|---|---|---|---|"]
    for row in study_rows:
        fraction = row.get("pause_line_fraction")
        study.append(f"| {row['kind']} | {_db(row.get('tonal_constant_db'))} | "
                     f"{_db(row.get('silence_excess_db'))} | {_db(row.get('silence_dbfs'))} | "
                     f"{'-' if fraction is None else f'{PERCENT * fraction:.1f}'} |")
    return "\n".join(["\n".join(lines), "", "\n".join(levels), "", "\n".join(study)]) + "\n"


__all__ += ["reference_markdown"]
