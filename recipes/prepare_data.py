"""Fetch and prepare the Allison corpus for vocoder training (Hydra recipe, ``make data``).

    python recipes/prepare_data.py                                    # -> data/allison/
    python recipes/prepare_data.py output_dir=/data/allison cache_dir=/data/cache
    python recipes/prepare_data.py trim_top_db=50 output_dir=data/allison_db50

Downloads ``asterisk-core-sounds-en-g722`` and ``asterisk-core-sounds-en`` with
``apt-get download`` into ``cache_dir`` (where ``apt-get`` is missing, put the two ``.deb``
files there by hand), unpacks them, decodes the 568 G.722 prompts, drops silence and the
non-speech prompts and writes 16 kHz PCM16 wavs plus HiFi-GAN's ``training.txt`` /
``validation.txt`` under ``output_dir``. A rerun skips what is done. Every option is
checked before any download or write; a non-empty ``output_dir`` that no earlier run
prepared (no ``settings.json`` of its own) or one prepared with other settings is refused. Recordings: Allison
Smith, Copyright 2003-2010, CC-BY-SA-3.0 (Digium's Asterisk core sounds).
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig

from upsampler.recipe_support.errors import (
    RecipeError,
    check_run_dir_override,
    one_line,
    run_or_exit,
)
from upsampler.recipe_support.options import check_choice, check_number, check_path
from upsampler.recipe_support.recipe_options import check_writable_dir
from upsampler.training.allison import G722_BITRATES, G722_SAMPLE_RATES, fetch_allison
from upsampler.training.corpus import prepare_corpus
from upsampler.training.corpus_settings import (
    MIN_HOLDOUT_EVERY,
    CorpusSettings,
    check_output_dir,
)
from upsampler.training.debian import PackageError

log = logging.getLogger("prepare_data")


def check_config(cfg: DictConfig) -> None:
    """Raise ``RecipeError`` naming the first option of configs/prepare_data.yaml whose
    value is not allowed (nothing is read or written)."""
    check_path(cfg, "output_dir")
    check_path(cfg, "cache_dir")
    check_choice(cfg, "sample_rate", G722_SAMPLE_RATES)
    check_choice(cfg, "bitrate", G722_BITRATES)
    check_number(cfg, "trim_top_db", above=0)
    check_number(cfg, "trim_margin_seconds", minimum=0)
    check_number(cfg, "holdout_every", minimum=MIN_HOLDOUT_EVERY, integer=True)
    check_number(cfg, "holdout_min_seconds", minimum=0)


def run(cfg: DictConfig) -> dict[str, Any]:
    """Check every option and ``cfg.output_dir``, fetch both packages, then prepare
    ``cfg.output_dir``; return the corpus summary."""
    check_config(cfg)
    check_writable_dir(cfg.output_dir, "output_dir")
    check_writable_dir(cfg.cache_dir, "cache_dir")
    try:
        settings = CorpusSettings(
            sample_rate=cfg.sample_rate, bitrate=cfg.bitrate, trim_top_db=cfg.trim_top_db,
            trim_margin_seconds=cfg.trim_margin_seconds, holdout_every=cfg.holdout_every,
            holdout_min_seconds=cfg.holdout_min_seconds,
        )
        check_output_dir(Path(cfg.output_dir), settings)
        paths = fetch_allison(cfg.cache_dir)
        return prepare_corpus(output_dir=cfg.output_dir, settings=settings, **paths)
    except (PackageError, ValueError, ImportError) as error:
        raise RecipeError(one_line(error)) from error


@hydra.main(config_path="../configs", config_name="prepare_data", version_base="1.3")
def main(cfg: DictConfig) -> None:
    """Command-line entry point: a setup problem exits with status 1 and one log line."""
    run_or_exit(run, cfg, log)


if __name__ == "__main__":
    check_run_dir_override(sys.argv)
    main()
