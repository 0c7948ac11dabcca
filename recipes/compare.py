"""Compare the upsamplers of an analyze multirun: one figure and one table (Hydra recipe).

    python recipes/analyze.py -m \
        upsampler=transposed,nearest_conv,linear_conv,subpixel,subpixel_icnr
    python recipes/compare.py runs=multirun/analyze/<date>

Reads every ``report.json`` under ``runs`` and writes, into ``<runs>/compare/``,
``comparison.png`` (tonal excess per upsampler, mean over seeds with min-max bars),
``comparison.md`` (a Markdown table) and ``comparison.json`` (the same rows).
"""

from __future__ import annotations

import json
import logging
import statistics
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig

from upsampler.analysis.plots import plot_comparison
from upsampler.recipe_support.errors import (
    RecipeError,
    check_run_dir_override,
    one_line,
    run_or_exit,
)
from upsampler.recipe_support.recipe_options import check_compare_options, check_writable_dir
from upsampler._atomic import atomic_write_text, write_json
from upsampler.analysis.figures import save_png

log = logging.getLogger("compare")

REPORT_NAME = "report.json"
COLUMNS = ("upsampler", "strides", "kernel sizes", "tonal excess, constant (dB)",
           "tonal excess, noise (dB)", "phase-gain CV per layer", "overlap max/min", "run")


def find_reports(runs: Path) -> list[tuple[Path, dict[str, Any]]]:
    """Every ``report.json`` under ``runs`` (sorted by path) with its parsed content."""
    if not runs.is_dir():
        raise RecipeError(f"runs={str(runs)!r} is not a folder")
    found = sorted(runs.rglob(REPORT_NAME))
    if not found:
        raise RecipeError(
            f"runs={str(runs)!r} holds no {REPORT_NAME}; run recipes/analyze.py -m first"
        )
    reports = []
    for path in found:
        try:
            reports.append((path, json.loads(path.read_text(encoding="utf-8"))))
        except (OSError, json.JSONDecodeError) as error:
            message = f"report {str(path)!r} is not readable JSON: {one_line(error)}"
            raise RecipeError(message) from error
    return reports


def comparison_rows(reports: list[tuple[Path, dict[str, Any]]], runs: Path) -> list[dict[str, Any]]:
    """One row per report: the fields ``plot_comparison`` reads plus the table's columns.

    A report without the fields analyze writes raises ``RecipeError`` naming its path.
    """
    rows = [report_row(path, report, runs) for path, report in reports]
    counts = Counter(row["upsampler"] for row in rows)
    for row in rows:
        if counts[row["upsampler"]] > 1:
            row["name"] = f"{row['upsampler']} ({row['run']})"
    return rows


def report_row(path: Path, report: dict[str, Any], runs: Path) -> dict[str, Any]:
    """The comparison row of one analyze ``report.json``, named by its upsampler."""
    try:
        tonal = report["tonal_excess_db"]
        ratios = [entry["ratio"] for entry in report["overlap"] or []
                  if entry["ratio"] is not None]
        return {
            "name": report["upsampler"],
            "upsampler": report["upsampler"],
            "sample_rate": report["sample_rate"],
            "strides": report["strides"],
            "upsample_kernel_sizes": report["upsample_kernel_sizes"],
            "summary_db": tonal["constant"]["mean"],
            "summary_db_min": tonal["constant"]["min"],
            "summary_db_max": tonal["constant"]["max"],
            "noise_summary_db": tonal["noise"]["mean"],
            "phase_gain_cv": [layer["median_coefficient_of_variation"]
                              for layer in report["phase_gain_imbalance"]],
            "overlap_ratio": max(ratios) if ratios else None,
            "seeds": report["seeds"],
            "run": path.parent.relative_to(runs).as_posix(),
        }
    except (KeyError, TypeError) as error:  # not an analyze report, or an older layout
        raise RecipeError(
            f"report {str(path)!r} lacks a field recipes/analyze.py writes: {one_line(error)}"
        ) from error


def markdown_table(rows: list[dict[str, Any]]) -> str:
    """The rows as a Markdown table (dB to one decimal, CVs to two)."""
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for row in rows:
        low, high = row["summary_db_min"], row["summary_db_max"]
        spread = f"{row['summary_db']:.1f} [{low:.1f}, {high:.1f}]"
        cells = [
            row["name"], str(row["strides"]), str(row["upsample_kernel_sizes"]), spread,
            f"{row['noise_summary_db']:.1f}", ", ".join(f"{cv:.2f}" for cv in row["phase_gain_cv"]),
            "n/a" if row["overlap_ratio"] is None else f"{row['overlap_ratio']:.2f}", row["run"],
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def run(cfg: DictConfig) -> list[dict[str, Any]]:
    """Collect the reports under ``cfg.runs``; write the figure, table and rows."""
    check_compare_options(cfg)
    runs = Path(cfg.runs).expanduser()
    if not runs.is_dir():
        raise RecipeError(f"runs={str(runs)!r} is not a folder")
    output_dir = check_writable_dir(cfg.output_dir, "output_dir")
    rows = comparison_rows(find_reports(runs), runs)
    try:
        output_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise RecipeError(f"output_dir {str(output_dir)!r} cannot be created: "
                          f"{one_line(error)}") from error
    rates = {row["sample_rate"] for row in rows}
    if len(rates) > 1:
        log.warning("the runs use different sample rates %s; tonal excess is compared as is",
                    sorted(rates))
    figure = plot_comparison(rows, title=f"Tonal excess by upsampler ({len(rows)} runs)")
    save_png(figure, output_dir / "comparison.png")
    atomic_write_text(output_dir / "comparison.md", markdown_table(rows))
    write_json(output_dir / "comparison.json", rows)
    best = min(rows, key=lambda row: row["summary_db"])
    log.info("compared %d runs (median tonal excess %.1f dB); least tonal: %s (%.1f dB); wrote %s",
             len(rows), statistics.median(row["summary_db"] for row in rows), best["name"],
             best["summary_db"], output_dir)
    return rows


@hydra.main(config_path="../configs", config_name="compare", version_base="1.3")
def main(cfg: DictConfig) -> None:
    """Command-line entry point: a problem exits with status 1 and one log line."""
    run_or_exit(run, cfg, log)


if __name__ == "__main__":
    check_run_dir_override(sys.argv)
    main()
