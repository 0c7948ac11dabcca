"""The upsampler study: one training run per upsampler kind, then one report (Hydra recipe).

    make study                                                  # -> multirun/study/
    python recipes/study.py corpus=/data/allison max_steps=2400 warmup_steps=1600
    python recipes/study.py kinds=[transposed_k2s,subpixel] hydra.run.dir=runs/two

Each kind is ``recipes/train.py experiment=demo`` plus its overrides (``variants`` in
``configs/study.yaml``), with the same seed, batch, data order, step budget and warm-up, into
``<output_dir>/runs/<kind>/``: ``workers`` runs at a time (each its own process on
``num_threads`` threads; a run's weights do not depend on what trains beside it). A rerun
skips kinds that reached ``max_steps`` and resumes the others from their last checkpoint pair. The report
(``<output_dir>/report/``) holds every kind's validation curves against steps, the table at
the final step (``study.md`` / ``study.json``) and the output spectra of the probe mels
(silence, a constant mid-level mel, one held-out utterance) with the expected tones marked.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from types import ModuleType
from typing import Any

import hydra
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf, open_dict
from torch import nn

from upsampler.recipe_support.build import checkpoint_front_end
from upsampler.recipe_support.errors import RecipeError, one_line, run_or_exit
from upsampler.training.data import default_wav_dir
from upsampler.recipe_support.workers import load_script, map_in_processes
from upsampler.training import data as training_data
from upsampler.training.artifacts import (
    PROBE_LEVELS,
    probe_level_dbfs,
    probe_mels,
    probe_spectrum,
    probe_tonal_excess,
    tone_frequencies,
)
from upsampler.training.checkpoints import (
    GENERATOR_PREFIX,
    checkpoint_name,
    latest_checkpoint,
    load_generator_state,
    read_pair,
)
from upsampler.training.study import (
    CURVE_METRICS,
    ProbeSpectrum,
    curve,
    read_records,
    summary_row,
    write_report,
)

log = logging.getLogger("study")
CONFIGS = Path(__file__).resolve().parents[1] / "configs"
HYDRA_VERSION_BASE = "1.3"
LISTS = ("training.txt", "validation.txt")  # HiFi-GAN's file lists in the corpus folder
RUN_CONFIG = "config.json"  # recipes/train.py's record of the run's generator and front end


def train_recipe() -> ModuleType:
    """``recipes/train.py`` as a module (recipes are scripts, not a package)."""
    return load_script(str(Path(__file__).with_name("train.py")))


def check_study(cfg: DictConfig) -> None:
    """One-line ``ValueError`` naming the field for a config the study cannot run."""
    unknown = [kind for kind in cfg.kinds if kind not in cfg.variants]
    if not cfg.kinds or unknown:
        raise ValueError(f"kinds must name at least one of {list(cfg.variants)}, got "
                         f"{list(cfg.kinds)} (unknown: {unknown})")
    for field, minimum in (("max_steps", 1), ("validation_every", 1), ("warmup_steps", 0),
                           ("validation_utterances", 1), ("batch_size", 1), ("num_threads", 1),
                           ("workers", 1)):
        value = cfg[field]
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise ValueError(f"{field} must be an integer >= {minimum}, got {value!r}")
    if cfg.warmup_steps > cfg.max_steps:
        raise ValueError(f"warmup_steps must be at most max_steps={cfg.max_steps}, got "
                         f"{cfg.warmup_steps}")
    corpus = Path(str(cfg.corpus)).expanduser()
    missing = [name for name in LISTS if not (corpus / name).is_file()]
    if missing:
        raise ValueError(f"corpus must be a folder holding {list(LISTS)} (make data), got "
                         f"{str(cfg.corpus)!r}: {missing} not found")


def train_overrides(cfg: DictConfig, kind: str, run_dir: Path) -> list[str]:
    """The ``recipes/train.py`` overrides of one kind's run."""
    corpus = Path(str(cfg.corpus)).expanduser().resolve()
    return [
        "experiment=demo", *cfg.variants[kind],
        f"max_steps={cfg.max_steps}", "max_minutes=null", "warmup_minutes=null",
        f"warmup_steps={cfg.warmup_steps}", f"validation_every={cfg.validation_every}",
        "validate_at_start=true", f"checkpoint_every={cfg.validation_every}",
        "keep_checkpoints=2", f"seed={cfg.seed}", f"deterministic={cfg.deterministic}",
        f"num_threads={cfg.num_threads}", f"progress={cfg.progress}", "resume=true",
        f"data.train_list={corpus / LISTS[0]}", f"data.validation_list={corpus / LISTS[1]}",
        f"data.validation_utterances={cfg.validation_utterances}",
        f"data.batch_size={cfg.batch_size}", f"output_dir={run_dir}", *cfg.train_overrides,
    ]


def compose_train(overrides: list[str]) -> DictConfig:
    """``configs/train.yaml`` with ``overrides`` (inside or outside a running Hydra app)."""
    if GlobalHydra.instance().is_initialized():
        return compose("train", overrides=overrides)
    with initialize_config_dir(config_dir=str(CONFIGS), version_base=HYDRA_VERSION_BASE):
        return compose("train", overrides=overrides)


def probe_front_end(train_cfg: DictConfig, run_dir: Path, step: int,
                    overrides: list[str]) -> nn.Module:
    """The mel front end of the run's ``config.json``: what its checkpoint was trained on.

    ``overrides`` (the kind's ``recipes/train.py`` overrides) that contradict it raise
    ``RecipeError``: a finished kind is not retrained when ``train_overrides`` change.
    """
    cfg = train_cfg.copy()
    with open_dict(cfg):
        cfg.checkpoint = str(run_dir / checkpoint_name(GENERATOR_PREFIX, step))
        cfg.model_config = str(run_dir / RUN_CONFIG)
    try:
        return instantiate(checkpoint_front_end(cfg, overrides).audio)
    except ValueError as error:
        raise RecipeError(f"{run_dir.name}: {one_line(error)}") from error


def probe_results(train_cfg: DictConfig, run_dir: Path, step: int, frames: int,
                  speech_index: int, overrides: list[str]) -> tuple[list[ProbeSpectrum], Any]:
    """The final generator's spectra for the three probe mels, and its expected tones."""
    mel_transform = probe_front_end(train_cfg, run_dir, step, overrides)
    generator = instantiate(train_cfg.model)
    generator_state, _ = read_pair(run_dir, step)
    load_generator_state(generator, generator_state, str(run_dir / f"g_{step:08d}"))
    sample_rate = float(mel_transform.sample_rate)
    probes = []
    for name, mel in probe_mels(int(mel_transform.num_mels), frames).items():
        frequencies, power = probe_spectrum(generator, mel, sample_rate)
        excess = probe_tonal_excess(generator, sample_rate, PROBE_LEVELS[name])
        probes.append(ProbeSpectrum(name, frequencies, power, excess,
                                    probe_level_dbfs(generator, mel)))
    list_path = Path(train_cfg.data.validation_list)
    files = training_data.read_file_list(list_path, default_wav_dir(list_path))
    if not 0 <= speech_index < len(files):
        raise ValueError(f"probes.speech_utterance must be in [0, {len(files)}), got "
                         f"{speech_index}")
    name, mel, _ = training_data.UtteranceDataset([files[speech_index]], mel_transform)[0]
    frequencies, power = probe_spectrum(generator, mel, sample_rate)
    probes.append(ProbeSpectrum(f"speech ({Path(name).name})", frequencies, power, None))
    return probes, tone_frequencies(generator, sample_rate)


def run_kind(cfg: DictConfig, kind: str, index: int, output_dir: Path) -> DictConfig:
    """Train one kind (or skip it when finished); returns its train config."""
    run_dir = output_dir / "runs" / kind
    train_cfg = compose_train(train_overrides(cfg, kind, run_dir))
    done = latest_checkpoint(run_dir) if run_dir.is_dir() else None
    if done is not None and done >= cfg.max_steps:
        log.info("kind %d/%d %s: finished (step %d), skipped", index, len(cfg.kinds), kind, done)
        return train_cfg
    log.info("kind %d/%d %s: training to step %d (from %s) in %s", index, len(cfg.kinds), kind,
             cfg.max_steps, done or 0, run_dir)
    result = train_recipe().run(train_cfg)
    log.info("kind %d/%d %s: done at step %d, validation %s", index, len(cfg.kinds), kind,
             result["step"], {k: round(v, 3) for k, v in result["validation"].items()
                              if isinstance(v, float) and math.isfinite(v)})
    return train_cfg


def train_kind(config: dict[str, Any], kind: str, index: int) -> str:
    """``run_kind`` from a plain (resolved) config: what a worker process calls."""
    cfg = OmegaConf.create(config)
    run_kind(cfg, kind, index, Path(str(cfg.output_dir)))
    return kind


def train_all(cfg: DictConfig, output_dir: Path) -> None:
    """Train the kinds one after another, or ``cfg.workers`` at a time in spawned processes.

    Each process trains on ``num_threads`` threads; a worker takes the next kind in the
    order of ``kinds`` when it finishes one, so list the slowest kind first.
    """
    if cfg.workers == 1:
        for index, kind in enumerate(cfg.kinds, start=1):
            run_kind(cfg, kind, index, output_dir)
        return
    config = OmegaConf.to_container(cfg, resolve=True)
    map_in_processes(__file__, "train_kind",
                     [(config, kind, index) for index, kind in enumerate(cfg.kinds, start=1)],
                     int(cfg.workers))


def run(cfg: DictConfig) -> dict[str, Any]:
    """Train every kind, then write the report; returns ``{"rows", "report"}``."""
    check_study(cfg)
    output_dir = Path(str(cfg.output_dir))
    rows, spectra = [], {}
    curves: dict[str, dict[str, tuple[list[int], list[float]]]] = {m: {} for m in CURVE_METRICS}
    threads = torch.get_num_threads()
    torch.set_num_threads(int(cfg.num_threads))  # the probes of skipped kinds too
    try:
        train_all(cfg, output_dir)
        for index, kind in enumerate(cfg.kinds, start=1):
            train_cfg = run_kind(cfg, kind, index, output_dir)  # finished: skipped
            run_dir = output_dir / "runs" / kind
            step = latest_checkpoint(run_dir)
            records = read_records(run_dir)
            _, state = read_pair(run_dir, step)
            probes, tones = probe_results(train_cfg, run_dir, step, int(cfg.probes.frames),
                                          int(cfg.probes.speech_utterance),
                                          train_overrides(cfg, kind, run_dir))
            rows.append(summary_row(kind, records, float(state.get("train_seconds", 0.0)),
                                    probes, int(cfg.warmup_steps)))
            spectra[kind] = (probes, tones)
            for metric in CURVE_METRICS:
                curves[metric][kind] = curve(records, metric)
    finally:
        torch.set_num_threads(threads)
    header = (f"# Upsampler study\n\n{len(cfg.kinds)} kinds, {cfg.max_steps} steps each "
              f"(discriminators from step {cfg.warmup_steps}), batch {cfg.batch_size}, seed "
              f"{cfg.seed}, {cfg.workers} worker(s) of {cfg.num_threads} thread(s), "
              f"{cfg.validation_utterances} held-out "
              f"utterances per validation, corpus {cfg.corpus}.\n\n"
              f"Tonal figures: the loudest line at any multiple of fs/hop over the output's "
              f"own white-noise floor, probes at 1.0 (constant value, noise std); the "
              f"silence / constant mel columns probe at log(1e-5) / -5. The figure moves "
              f"with the probe level (biases and leaky ReLUs make a generator non-linear) "
              f"and, at initialisation, with the seed: docs/study/reference.md measures both. "
              f"'silence mel out' is the output's RMS for the mel of digital silence in dBFS; "
              f"'pause-line fraction' the share of the output's pause power in lines at "
              f"multiples of fs/hop on the bundled speech recording.\n")
    report_dir = output_dir / "report"
    written = write_report(report_dir, rows, curves, spectra, header, int(cfg.warmup_steps))
    log.info("report: %s (%d files)", report_dir / "study.md", len(written))
    return {"rows": rows, "report": report_dir}


def run_checked(cfg: DictConfig) -> dict[str, Any]:
    """``run`` with bad input turned into a one-line ``RecipeError`` (exit status 1)."""
    try:
        check_study(cfg)
    except ValueError as error:
        raise RecipeError(one_line(error)) from error
    return run(cfg)


@hydra.main(config_path="../configs", config_name="study", version_base=HYDRA_VERSION_BASE)
def main(cfg: DictConfig) -> None:
    """Command-line entry point."""
    run_or_exit(run_checked, cfg, log)


if __name__ == "__main__":
    main()
