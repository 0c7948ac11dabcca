"""``docs/benchmarks.md``: the benchmark recipe's measured tables as Markdown.

One section per part of a run that measured something (the layer table, then each enabled
section), each headed by its provenance line (command, date, torch, CPU, threads). A run
that measured only some sections replaces those and keeps the others as they stand, each
under its own provenance; nothing else of an earlier file is kept. The file starts with
:data:`HEADER_MARK`, and a file at the path without it (one a person wrote) is refused
before any timing. Each section's table comes from :mod:`.report_tables`; this module lays
out the file around them::

    <!-- benchmark recipe -->        HEADER_MARK: the file is the recipe's
    # Benchmarks ...                 rewritten every run
    <!-- section: layers -->         SECTION_MARK: from here to the next mark, one section
    ## Layers ...
    <!-- section: streaming -->
    ...
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from upsampler.recipe_support.benchmarks.report_tables import RENDERERS

HEADER_MARK = ("<!-- Written by recipes/benchmark.py docs.enabled=true; each section is "
               "replaced when a run measures it. Edit the recipe, not this file. -->")
SECTION_MARK = "<!-- section: {name} -->"
SECTION_PATTERN = re.compile(r"^<!-- section: (\w+) -->$", re.MULTILINE)


def render_sections(results: Mapping[str, Any], stamp: str) -> dict[str, str]:
    """The Markdown of every section with rows in ``results``, each headed by ``stamp``."""
    sections = {}
    for name, render in RENDERERS.items():
        if not results.get(name):  # not run, or skipped (it said why)
            continue
        title, what, lines = render(results)
        text = [SECTION_MARK.format(name=name), f"## {title}", "", stamp, "", what, "", *lines]
        sections[name] = "\n".join(text) + "\n"
    return sections


def read_sections(text: str) -> dict[str, str]:
    """The sections of a file :func:`benchmarks_markdown` wrote, by name."""
    marks = list(SECTION_PATTERN.finditer(text))
    ends = [mark.start() for mark in marks[1:]] + [len(text)]
    return {mark.group(1): text[mark.start():end].rstrip("\n") + "\n"
            for mark, end in zip(marks, ends) if mark.group(1) in RENDERERS}


def benchmarks_markdown(sections: Mapping[str, str]) -> str:
    """The whole file: header, then ``sections`` in :data:`RENDERERS` order."""
    header = [
        HEADER_MARK, "", "# Benchmarks", "",
        "Measured by `recipes/benchmark.py` with `docs.enabled=true`; each section names the "
        "command that wrote it, the date, torch's version, the CPU and the thread count. "
        "Times move between runs and machines: compare ratios taken in the same process, "
        "not seconds across sections. Every row is also in the run's `benchmark.json` and "
        "`<section>.csv`.",
        "",
    ]
    body = "\n".join(sections[name] for name in RENDERERS if name in sections)
    return "\n".join(header) + "\n" + body


def check_docs_file(path: Path, mark: str = HEADER_MARK, recipe: str = "benchmark") -> None:
    """``ValueError`` when ``path`` exists and is not a file ``recipe`` wrote: its first line
    is not ``mark`` (benchmark's by default; another recipe's docs writer passes its own)."""
    if not path.exists():
        return
    if not path.is_file():
        raise ValueError(f"docs.output {str(path)!r} is not a file")
    with path.open(encoding="utf-8", errors="replace") as stream:
        first = stream.readline().rstrip("\n")
    if first != mark:
        raise ValueError(f"docs.output {str(path)!r} exists and was not written by the "
                         f"{recipe} recipe (its first line is not the recipe's mark); "
                         f"choose another docs.output or move the file")


def merged_markdown(path: Path, results: Mapping[str, Any], stamp: str) -> str:
    """The file's new text: this run's sections over those ``path`` holds (if it exists)."""
    kept = read_sections(path.read_text(encoding="utf-8")) if path.is_file() else {}
    return benchmarks_markdown({**kept, **render_sections(results, stamp)})


__all__ = ["HEADER_MARK", "benchmarks_markdown", "check_docs_file",
           "merged_markdown", "read_sections", "render_sections"]
