"""Trained reference table: analyze reports of trained and initial models beside the study.

    python recipes/analyze.py checkpoint=hifigan_v1_universal audio=22k_hop256 \
        model=hifigan_v1 figures=false output_dir=docs/study/reference/hifigan_v1_universal
    ...                                         # one analyze run per entry of ``reports``
    python recipes/reference.py                 # -> docs/study/reference.md

Reads every analyze ``report.json`` named in ``reports`` (label -> path) and the study's
final-step rows (``study``: its ``study.json``), and writes ``output`` (Markdown): the tonal
figure, the silence mel's output level in dBFS, the pause lines of the bundled speech, the
tonal figure by probe level and noise seed (``upsampler.training.study.reference_markdown``).
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig

from upsampler._atomic import atomic_write_text
from upsampler.recipe_support.errors import (
    RecipeError,
    check_run_dir_override,
    one_line,
    run_or_exit,
)
from upsampler.recipe_support.recipe_options import check_reference_options, check_writable_dir
from upsampler.recipe_support.provenance import command_line, provenance
from upsampler.training.study import reference_markdown

log = logging.getLogger("reference")


def read_json(path: Path) -> Any:
    """Parsed JSON of ``path``; ``RecipeError`` naming it when missing or unreadable."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise RecipeError(f"{str(path)!r} is not readable JSON: {one_line(error)}") from error


def run(cfg: DictConfig) -> str:
    """Write ``cfg.output`` from the analyze reports and the study rows; returns the text."""
    check_reference_options(cfg)
    output = Path(str(cfg.output)).expanduser()
    check_writable_dir(output.parent, "output's folder")
    reports = {str(label): read_json(Path(str(path))) for label, path in cfg.reports.items()}
    study_rows = read_json(Path(str(cfg.study)))["rows"] if cfg.study else []
    sources = "\n".join(f"- {label}: `{path}`" for label, path in cfg.reports.items())
    text = (f"# Trained reference\n\n{provenance(command_line())} It reads the "
            f"analyze reports below (each from `python recipes/analyze.py figures=false "
            f"output_dir=<its folder> ...`, the command in `configs/reference.yaml`) and "
            f"the study's rows (`{cfg.study}`).\n\n{cfg.notes}\n\nSources:\n{sources}\n\n"
            f"{reference_markdown(reports, study_rows)}")
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise RecipeError(f"output {str(output)!r}: its folder cannot be created: "
                          f"{one_line(error)}") from error
    atomic_write_text(output, text)
    log.info("wrote %s (%d reports, %d study rows)", output, len(reports), len(study_rows))
    return text


@hydra.main(config_path="../configs", config_name="reference", version_base="1.3")
def main(cfg: DictConfig) -> None:
    """Command-line entry point: a problem exits with status 1 and one log line."""
    run_or_exit(run, cfg, log)


if __name__ == "__main__":
    check_run_dir_override(sys.argv)
    main()
