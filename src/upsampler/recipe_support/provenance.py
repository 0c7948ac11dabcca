"""Where a measured figure came from: the header every recipe-written ``docs/*.md`` starts with.

A figure in the docs is only worth what a reader can rerun, so each file names the command
that wrote it, the date, torch's version, the CPU and the thread count.
"""

from __future__ import annotations

import datetime
import platform
import shlex
import sys
from pathlib import Path

import torch

CPU_INFO = Path("/proc/cpuinfo")


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
    """The command as a shell would take it: ``python recipes/x.py key=value ...``."""
    argv = sys.argv if argv is None else argv
    return "python " + " ".join(shlex.quote(argument) for argument in argv)


def provenance(command: str) -> str:
    """Markdown lines naming ``command``, today's date, torch, the CPU and torch's threads."""
    return (f"Written by `{command}` on {datetime.date.today().isoformat()}: torch "
            f"{torch.__version__}, {cpu_name()}, {torch.get_num_threads()} thread(s).")


__all__ = ["command_line", "cpu_name", "provenance"]
