"""Where a measured figure came from: the header every recipe-written ``docs/*.md`` starts with.

A figure in the docs is only worth what a reader can rerun, so each file names the command
that wrote it, the date, torch's version, the CPU and the thread count. A benchmark's command
also carries the environment variables that change its numbers (:func:`environment_prefix`),
and its line how busy the machine was (:func:`load_note`).
"""

from __future__ import annotations

import datetime
import os
import platform
import shlex
import sys
from collections.abc import Mapping
from pathlib import Path

import torch

CPU_INFO = Path("/proc/cpuinfo")
# where the numbers depend on the process's environment, the command names it
ENVIRONMENT_KEYS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "MALLOC_MMAP_THRESHOLD_",
                    "MALLOC_TRIM_THRESHOLD_", "LD_PRELOAD")
# overrides that say where a run writes or how chatty it is, never what it measures: the
# recorded command leaves them out, so a docs file does not carry one machine's folders
PLACE_KEYS = ("output_dir", "hydra.run.dir", "hydra.sweep.dir", "progress")


def cpu_name() -> str:
    """The CPU's model name (Linux ``/proc/cpuinfo``), else ``platform.processor()``."""
    try:
        for line in CPU_INFO.read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def command_line(argv: list[str] | None = None) -> str:
    """The command as a shell would take it: ``python recipes/x.py key=value ...``, less the
    overrides of :data:`PLACE_KEYS` (where it wrote, progress), which change no figure."""
    argv = sys.argv if argv is None else argv
    kept = [argument for argument in argv
            if argument.partition("=")[0].lstrip("+~") not in PLACE_KEYS]
    return "python " + " ".join(shlex.quote(argument) for argument in kept)


def provenance(command: str) -> str:
    """Markdown lines naming ``command``, today's date, torch, the CPU and torch's threads."""
    return (f"Written by `{command}` on {datetime.date.today().isoformat()}: torch "
            f"{torch.__version__}, {cpu_name()}, {torch.get_num_threads()} thread(s).")


def environment_prefix(environ: Mapping[str, str] | None = None) -> str:
    """``KEY=value `` for each :data:`ENVIRONMENT_KEYS` set, so the command reruns as run."""
    environ = os.environ if environ is None else environ
    return "".join(f"{key}={environ[key]} " for key in ENVIRONMENT_KEYS if key in environ)


def load_note() -> str:
    """How busy the machine was as the run started (the one-minute load average, Unix), as a
    sentence to follow the provenance line; empty where the system does not say."""
    try:
        one_minute = os.getloadavg()[0]
    except (AttributeError, OSError):
        return ""
    return f" Load average as it started: {one_minute:.1f} on {os.cpu_count()} CPU(s)."


__all__ = ["ENVIRONMENT_KEYS", "PLACE_KEYS", "command_line", "cpu_name", "environment_prefix",
           "load_note", "provenance"]
