"""What decides a prepared corpus, and the record of it in the corpus's folder.

:class:`CorpusSettings` holds every setting that changes the wavs or the split.
:func:`claim_output_dir` writes them to ``<output_dir>/settings.json`` before the first wav,
after :func:`check_output_dir` has refused a folder prepared with other settings or one that
holds files without that record (a user's own corpus), so a rerun only resumes its own work.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from upsampler._atomic import write_json
from upsampler.training.allison import G722_BITRATES, G722_SAMPLE_RATES

SETTINGS = "settings.json"
MIN_HOLDOUT_EVERY = 2  # 1 would hold out every long prompt and train on the short ones only
FOREIGN_PATHS_SHOWN = 5


@dataclass(frozen=True)
class CorpusSettings:
    """What decides the wavs and the split; a rerun with other settings must use a new folder."""

    sample_rate: int = 16000
    bitrate: int = 64000
    trim_top_db: float = 40.0
    trim_margin_seconds: float = 0.05
    holdout_every: int = 10
    holdout_min_seconds: float = 1.5

    def __post_init__(self) -> None:
        if self.sample_rate not in G722_SAMPLE_RATES:
            raise ValueError(f"sample_rate must be one of {list(G722_SAMPLE_RATES)}, "
                             f"got {self.sample_rate!r}")
        if self.bitrate not in G722_BITRATES:
            raise ValueError(f"bitrate must be one of {list(G722_BITRATES)}, got {self.bitrate!r}")
        if isinstance(self.holdout_every, bool) or not isinstance(self.holdout_every, int) \
                or self.holdout_every < MIN_HOLDOUT_EVERY:
            raise ValueError(f"holdout_every must be an integer >= {MIN_HOLDOUT_EVERY}, "
                             f"got {self.holdout_every!r}")
        for name, minimum in (("trim_top_db", None), ("trim_margin_seconds", 0.0),
                              ("holdout_min_seconds", 0.0)):
            value = getattr(self, name)
            real = isinstance(value, (int, float)) and not isinstance(value, bool) \
                and math.isfinite(value)
            if not real or (value < minimum if minimum is not None else not value > 0):
                bound = f">= {minimum:g}" if minimum is not None else "> 0"
                raise ValueError(f"{name} must be a number {bound}, got {value!r}")


def recorded_settings(output_dir: Path) -> dict[str, Any] | None:
    """The settings an earlier :func:`~upsampler.training.corpus.prepare_corpus` recorded in
    ``output_dir``, else None.

    None also for a ``settings.json`` that is not JSON or does not hold exactly the
    :class:`CorpusSettings` fields (another program's file).
    """
    try:
        previous = json.loads((output_dir / SETTINGS).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    fields = set(CorpusSettings.__dataclass_fields__)
    return previous if isinstance(previous, dict) and set(previous) == fields else None


def check_output_dir(output_dir: Path, settings: CorpusSettings) -> None:
    """Raise ``ValueError`` unless ``output_dir`` is missing, empty, or an earlier
    preparation's folder with the same ``settings`` (which a rerun resumes).

    A non-empty folder without a ``settings.json`` of this module is someone else's (a
    user's own corpus): it is refused naming what is in it, so its ``training.txt``,
    ``validation.txt``, ``README.txt`` and ``wavs/`` are never written over or added to.
    """
    if not output_dir.exists():
        return
    if not output_dir.is_dir():
        raise ValueError(f"output_dir {str(output_dir)!r} is not a folder")
    previous = recorded_settings(output_dir)
    if previous is None:
        present = sorted(output_dir.iterdir())
        if present:
            shown = ", ".join(repr(str(path)) for path in present[:FOREIGN_PATHS_SHOWN])
            more = len(present) - FOREIGN_PATHS_SHOWN
            shown += f" and {more} more" if more > 0 else ""
            raise ValueError(
                f"output_dir {str(output_dir)!r} holds files no earlier prepare_data run "
                f"recorded (no {SETTINGS} of its own): {shown}; choose a new or empty "
                f"output_dir"
            )
        return
    wanted = asdict(settings)
    if previous != wanted:
        raise ValueError(
            f"output_dir {str(output_dir)!r} was prepared with {previous}, not {wanted}; "
            f"choose another output_dir or delete that one"
        )


def claim_output_dir(output_dir: Path, settings: CorpusSettings) -> None:
    """Refuse a folder :func:`check_output_dir` refuses; record ``settings`` for the next run."""
    check_output_dir(output_dir, settings)
    output_dir.mkdir(parents=True, exist_ok=True)
    write_json(output_dir / SETTINGS, asdict(settings))


__all__ = ["MIN_HOLDOUT_EVERY", "SETTINGS", "CorpusSettings", "check_output_dir",
           "claim_output_dir", "recorded_settings"]
