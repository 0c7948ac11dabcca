"""The upsampler study: one training run per upsampler kind, then one report (Hydra recipe).

    make study                                                  # -> multirun/study/
    python recipes/study.py corpus=/data/allison max_steps=2400 warmup_steps=1600 \
        hydra.run.dir=runs/allison    # other settings: a folder of their own
    python recipes/study.py kinds=[transposed_k2s,subpixel] hydra.run.dir=runs/two

Each kind is ``recipes/train.py experiment=demo`` plus its overrides (``variants`` in
``configs/study.yaml``), with the same seed, batch, data order, step budget and warm-up, into
``<output_dir>/runs/<kind>/``: ``workers`` runs at a time (each its own process on
``num_threads`` threads; a run's weights do not depend on what trains beside it). A rerun
skips kinds that reached ``max_steps`` and resumes the others from their last checkpoint
pair. The report (``<output_dir>/report/``) holds every kind's validation curves against
steps, the table at the final step (``study.md`` / ``study.json``) and the output spectra of
the probe mels (silence, a constant mid-level mel, one held-out utterance) with the expected
tones marked.

Every option (``probes`` and each kind's composed ``recipes/train.py`` config included) is
checked before anything is written; a bad one is one ``RecipeError`` line (exit status 1).
``<output_dir>/study_settings.json`` records the settings the report states and the runs
were made with (:data:`DECIDING`, and each kind's ``variants`` overrides); a rerun that
changes any of them is refused, listing each change. ``max_steps`` is a budget: a larger one
extends every kind from its last checkpoint pair (to the weights of a run trained to it
directly, tested), one below the step a kind's run already reached is refused. The report states
the step each kind's run actually reached, never the configured budget. ``validation_every``,
``deterministic``, ``progress``, ``kinds`` and ``probes`` change freely (the curves and
probes come from what the runs recorded). One study per folder at a time (a lock).
"""

from __future__ import annotations

import logging
import math
import re
import sys
from collections.abc import Mapping
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

from upsampler._atomic import write_json
from upsampler.recipe_support.front_end import checkpoint_front_end
from upsampler.recipe_support.errors import (
    RecipeError,
    main_leaving_no_refused_run_dir,
    one_line,
    run_or_exit,
)
from upsampler.recipe_support.lock import RunLock
from upsampler.recipe_support.recipe_options import check_writable_dir
from upsampler.recipe_support.study_folder import (
    LISTS,
    RUN_CONFIG,
    SETTINGS_FILE,
    check_study,
    claim_study,
    steps_label,
)
from upsampler.recipe_support.train_options import check_train_options
from upsampler.training.data import default_wav_dir
from upsampler.recipe_support.workers import load_script, map_in_processes
from upsampler.training import data as training_data
from upsampler.training.artifacts import (
    PROBE_LEVELS,
    probe_frames_needed,
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


def train_recipe() -> ModuleType:
    """``recipes/train.py`` as a module (recipes are scripts, not a package)."""
    return load_script(str(Path(__file__).with_name("train.py")))


def hydra_value(value: Any) -> str:
    """``value`` written as a Hydra override value: ``null``, ``true``/``false``, a number,
    or a quoted string (a path holding spaces, commas or brackets stays one string)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    text = re.sub(r"(\\*)'", lambda m: m.group(1) * 2 + "\\'", str(value))
    return "'" + re.sub(r"(\\+)$", lambda m: m.group(1) * 2, text) + "'"


def train_overrides(cfg: DictConfig, kind: str, run_dir: Path) -> list[str]:
    """The ``recipes/train.py`` overrides of one kind's run (values in Hydra's syntax)."""
    corpus = Path(str(cfg.corpus)).expanduser().resolve()
    given = {
        "max_steps": cfg.max_steps, "max_minutes": None, "warmup_minutes": None,
        "warmup_steps": cfg.warmup_steps, "validation_every": cfg.validation_every,
        "validate_at_start": True, "checkpoint_every": cfg.validation_every,
        "keep_checkpoints": 2, "seed": cfg.seed, "deterministic": cfg.deterministic,
        "num_threads": cfg.num_threads, "progress": cfg.progress, "resume": True,
        "data.train_list": corpus / LISTS[0], "data.validation_list": corpus / LISTS[1],
        "data.validation_utterances": cfg.validation_utterances,
        "data.batch_size": cfg.batch_size, "output_dir": run_dir,
    }
    return ["experiment=demo", *cfg.variants[kind],
            *(f"{key}={hydra_value(value)}" for key, value in given.items()),
            *cfg.train_overrides]


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


def check_kinds(cfg: DictConfig, output_dir: Path) -> None:
    """Each kind's composed ``recipes/train.py`` config passes train's option checks, and the
    probes fit: ``probes.frames`` is long enough for every kind's hop and
    ``probes.speech_utterance`` indexes the validation list. One ``RecipeError`` line; reads
    only."""
    hops = {}
    for kind in cfg.kinds:
        try:
            train_cfg = compose_train(train_overrides(cfg, kind, output_dir / "runs" / kind))
        except Exception as error:  # Hydra: an override it cannot parse or apply
            raise RecipeError(f"kind {kind}: its recipes/train.py overrides (variants.{kind} "
                              f"and train_overrides) do not compose: {one_line(error)}"
                              ) from error
        try:
            check_train_options(train_cfg)
        except RecipeError as error:
            raise RecipeError(f"kind {kind}: {error}") from error
        hops[kind] = int(train_cfg.audio.hop_length)
    needed = max(probe_frames_needed(hop) for hop in hops.values())
    if cfg.probes.frames < needed:
        raise RecipeError(f"probes.frames must be an integer >= {needed} (the probe spectrum of "
                          f"hop {max(hops.values())}), got {cfg.probes.frames}")
    list_path = Path(str(cfg.corpus)).expanduser() / LISTS[1]
    try:
        count = len(training_data.read_file_list(list_path, default_wav_dir(list_path)))
    except ValueError as error:
        raise RecipeError(f"corpus {str(cfg.corpus)!r}: {one_line(error)}") from error
    if cfg.probes.speech_utterance >= count:
        raise RecipeError(f"probes.speech_utterance must be an index into {LISTS[1]}'s "
                          f"{count} utterances (0 to {count - 1}), got "
                          f"{cfg.probes.speech_utterance}")


def run(cfg: DictConfig) -> dict[str, Any]:
    """Check every option and the folder, train every kind, then write the report; returns
    ``{"rows", "report", "steps"}`` (``steps``: each kind's final checkpoint step).

    Nothing is written before the checks pass: options, each kind's train config, the
    output folder's writability and the settings its earlier runs were made with.
    """
    check_study(cfg)
    output_dir = Path(str(cfg.output_dir)).expanduser()
    check_writable_dir(output_dir, "output_dir")
    check_kinds(cfg, output_dir)
    claim_study(cfg, output_dir)  # refuse before the lock creates anything
    with RunLock(output_dir):
        settings = claim_study(cfg, output_dir)
        if not (output_dir / SETTINGS_FILE).exists() and (output_dir / "runs").is_dir():
            log.info("%s: no %s (made before the study recorded its settings); the runs' batch "
                     "size and seed match, the other settings are taken as this config's",
                     output_dir, SETTINGS_FILE)
        write_json(output_dir / SETTINGS_FILE, settings)
        return train_and_report(cfg, output_dir, settings)


def train_and_report(cfg: DictConfig, output_dir: Path, settings: Mapping[str, Any]
                     ) -> dict[str, Any]:
    """Train every kind (finished ones skipped), then write the report; the header states
    ``settings`` (what the runs were made with) and the steps the runs reached."""
    rows, spectra, steps = [], {}, {}
    curves: dict[str, dict[str, tuple[list[int], list[float]]]] = {m: {} for m in CURVE_METRICS}
    threads = torch.get_num_threads()
    if cfg.num_threads is not None:
        torch.set_num_threads(int(cfg.num_threads))  # the probes of skipped kinds too
    try:
        train_all(cfg, output_dir)
        for index, kind in enumerate(cfg.kinds, start=1):
            train_cfg = run_kind(cfg, kind, index, output_dir)  # finished: skipped
            run_dir = output_dir / "runs" / kind
            step = latest_checkpoint(run_dir)
            steps[kind] = int(step)
            records = read_records(run_dir)
            _, state = read_pair(run_dir, step)
            probes, tones = probe_results(train_cfg, run_dir, step, int(cfg.probes.frames),
                                          int(cfg.probes.speech_utterance),
                                          train_overrides(cfg, kind, run_dir))
            rows.append(summary_row(kind, records, float(state.get("train_seconds", 0.0)),
                                    probes, int(settings["warmup_steps"])))
            spectra[kind] = (probes, tones)
            for metric in CURVE_METRICS:
                curves[metric][kind] = curve(records, metric)
    finally:
        torch.set_num_threads(threads)
    threads_label = ("torch's default number of" if settings["num_threads"] is None
                     else settings["num_threads"])
    header = (f"# Upsampler study\n\n{len(cfg.kinds)} kinds, {steps_label(steps)} "
              f"(discriminators from step {settings['warmup_steps']}), batch "
              f"{settings['batch_size']}, seed {settings['seed']}, {settings['workers']} "
              f"worker(s) of {threads_label} thread(s), {settings['validation_utterances']} "
              f"held-out utterances per validation, corpus {cfg.corpus}.\n\n"
              f"Tonal figures: the loudest line at any multiple of fs/hop over the output's "
              f"own white-noise floor, probes at 1.0 (constant value, noise std); the "
              f"silence / constant mel columns probe at log(1e-5) / -5. The figure moves "
              f"with the probe level (biases and leaky ReLUs make a generator non-linear) "
              f"and, at initialisation, with the seed: docs/study/reference.md measures both. "
              f"'silence mel out' is the output's RMS for the mel of digital silence in dBFS; "
              f"'pause-line fraction' the share of the output's pause power in lines at "
              f"multiples of fs/hop on the bundled speech recording.\n")
    report_dir = output_dir / "report"
    written = write_report(report_dir, rows, curves, spectra, header,
                           int(settings["warmup_steps"]))
    log.info("report: %s (%d files)", report_dir / "study.md", len(written))
    return {"rows": rows, "report": report_dir, "steps": steps}


@hydra.main(config_path="../configs", config_name="study", version_base=HYDRA_VERSION_BASE)
def main(cfg: DictConfig) -> None:
    """Command-line entry point: a bad option or folder exits with status 1 and one line."""
    run_or_exit(run, cfg, log)


if __name__ == "__main__":
    main_leaving_no_refused_run_dir(main, sys.argv)
