"""Training logs: ``metrics.jsonl`` (one JSON object per line) and optional TensorBoard.

TensorBoard event files are written when the ``tensorboard`` package is importable
(``pip install "upsampler[tensorboard]"``); without it only ``metrics.jsonl`` is kept.
On resume, :meth:`RunLog.truncate` drops the lines of steps after the checkpoint, so the
file reads as one uninterrupted run; a torn last line (a full disk, a killed write) is
dropped with a warning.
"""

from __future__ import annotations

import json
import logging
import math
import os
from pathlib import Path
from types import TracebackType
from typing import Any

from torch import Tensor

from upsampler._atomic import append_text, atomic_write_text

METRICS_FILE = "metrics.jsonl"
TENSORBOARD_DIR = "tensorboard"

log = logging.getLogger(__name__)


def _json_value(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None  # JSON has no NaN; a non-finite value is logged as null
    return value


class RunLog:
    """Append records to ``<directory>/metrics.jsonl`` and scalars to TensorBoard."""

    def __init__(self, directory: str | os.PathLike[str], tensorboard: bool = True) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.path = self.directory / METRICS_FILE
        self.writer: Any = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                log.warning("tensorboard is not installed: only %s is written "
                            "(pip install \"upsampler[tensorboard]\" for event files)",
                            METRICS_FILE)
            else:
                self.writer = SummaryWriter(str(self.directory / TENSORBOARD_DIR))

    def truncate(self, step: int) -> None:
        """Drop the records of steps after ``step`` (a resumed run repeats them) and a torn
        last line; a line before the last that is not JSON is a ``ValueError``."""
        if not self.path.is_file():
            return
        lines = [line for line in self.path.read_text(encoding="utf-8", errors="replace")
                 .splitlines() if line.strip()]
        kept = []
        for number, line in enumerate(lines, start=1):
            try:
                record = json.loads(line)
            except ValueError:
                if number < len(lines):
                    raise ValueError(f"{self.path} line {number} is not JSON ({line[:60]!r}); "
                                     f"only a torn last line is dropped") from None
                log.warning("%s: dropping its torn last line %d (%r), a write cut short",
                            self.path, number, line[:60])
                continue
            if isinstance(record, dict) and record.get("step", 0) <= step:
                kept.append(line)
        atomic_write_text(self.path, "".join(f"{line}\n" for line in kept))

    def write(self, kind: str, step: int, values: dict[str, Any]) -> None:
        """One ``{"kind", "step", **values}`` line; numbers also go to TensorBoard ``kind/name``."""
        record = {"kind": kind, "step": step, **{k: _json_value(v) for k, v in values.items()}}
        append_text(self.path, json.dumps(record) + "\n")  # WriteError on a full disk
        if self.writer is not None:
            for name, value in values.items():
                if isinstance(value, (int, float)) and value is not None:
                    self.writer.add_scalar(f"{kind}/{name}", value, step)

    def audio(self, tag: str, wav: Tensor, sample_rate: int, step: int) -> None:
        """A ``(L,)`` waveform to TensorBoard (no-op without it)."""
        if self.writer is not None:
            self.writer.add_audio(tag, wav.detach().cpu().clamp(-1, 1), step, sample_rate)

    def figure(self, tag: str, figure: Any, step: int) -> None:
        """A matplotlib figure to TensorBoard (no-op without it)."""
        if self.writer is not None:
            self.writer.add_figure(tag, figure, step)

    def close(self) -> None:
        """Flush and close the TensorBoard writer."""
        if self.writer is not None:
            self.writer.close()

    def __enter__(self) -> "RunLog":
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.close()


__all__ = ["METRICS_FILE", "RunLog", "TENSORBOARD_DIR"]
