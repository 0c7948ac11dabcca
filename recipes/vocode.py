"""Vocode waveforms or mel spectrograms with a HiFi-GAN generator (Hydra recipe).

    python recipes/vocode.py                                   # bundled speech, universal V1
    python recipes/vocode.py checkpoint=demo                   # the package's own demo model
    python recipes/vocode.py input=clips/ checkpoint=g_02500000 model_config=config.json
    python recipes/vocode.py checkpoint=none model=hifigan_v1  # untrained V1 (noise-like)
    python recipes/vocode.py input=mel.npy checkpoint=none model=debug audio=16k_hop200
    torchrun --nproc-per-node=2 recipes/vocode.py input=clips/ hydra.run.dir=out/clips

``checkpoint=auto`` (the default) is jik876's universal HiFi-GAN V1 when
``upsampler[pretrained]`` is installed, else (one warning) ``demo``, the small vocoder trained
with this package and shipped in it (16 kHz, hop 200); every pretrained name is listed by
``python -m upsampler.models.pretrained``. A checkpoint's ``config.json`` sets the mel front
end (``audio``; an ``audio`` override that contradicts it is refused); a waveform at another
rate is resampled (logged).

Per input it writes ``<output_dir>/<name>.wav`` (exactly ``T * hop`` samples for a mel of
``T`` frames, exactly the input's length for a waveform), ``figures/<name>.png`` (input mel
vs the output's mel) and a record; rank 0 then writes ``summary.json``. Under ``torchrun``
the files are sharded over ranks. What the run guarantees:

- nothing it did not write is written over: an output that is an input, or an existing
  file the folder's records do not list, stops the run before anything is written;
- a ``hydra.run.dir`` that is the input folder, or an existing folder of the user's inside
  it, is refused before Hydra writes there; a refused run removes the run folder it made
  (Hydra's ``.hydra/`` and log), so the input tree is left as it was;
- each folder of the input that is not searched (hidden, ``outputs/`` or ``multirun/`` at
  the top, an earlier run's folder with ``records/`` or ``.hydra/``) is logged with why;
- a rerun into the same folder skips finished files only when the settings that decide
  them (``records/settings.json``: model, checkpoint path and SHA-256, audio front end,
  dtype) and the input file are unchanged; other settings are refused, naming each change;
- one run per folder at a time (a lock); temporary files of a killed run are removed;
- long inputs are vocoded in overlapping windows of ``window_frames`` frames, exact to
  the offline result, in memory bounded by the window;
- a bad file is logged as one line and listed under ``failures``; the others still run,
  and the exit status is 1 when any file failed. A full disk, an exhausted quota or a
  read-only folder stops the run with one line (``cannot write '<path>': no space left on
  device``), exit status 1: the finished files stay, no half-written one is left.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import hydra
import torch
from omegaconf import DictConfig
from torch import nn
from tqdm import tqdm

from upsampler.recipe_support.distributed import ProcessContext, init_process_context
from upsampler.recipe_support.errors import (
    EXIT_FAILURE,
    RecipeError,
    main_leaving_no_refused_run_dir,
    one_line,
    run_or_exit,
)
from upsampler._atomic import WriteError, remove_stale_temporaries, write_json
from upsampler.recipe_support.front_end import checkpoint_front_end
from upsampler.recipe_support.lock import RunLock
from upsampler.recipe_support.recipe_options import (
    check_vocode_options,
    check_writable_on_main,
)
from upsampler.recipe_support.records import RunRecords, input_identity, shard
from upsampler.recipe_support.vocode_setup import (
    SUMMARY_NAME,
    Job,
    prepare,
    refuse_foreign_outputs,
    refuse_run_dir_in_input,
)
from upsampler.recipe_support.vocoding import vocode_one

log = logging.getLogger("vocode")


def claim_folder(records: RunRecords, jobs: list[Job], settings: dict[str, Any]) -> None:
    """Rank 0's checks before any write: foreign files, other settings, stale temporaries."""
    refuse_foreign_outputs(records, jobs)
    records.claim(settings, SUMMARY_NAME)
    for temp in remove_stale_temporaries(records.output_dir):
        log.info("removed %s, left by an interrupted run", temp)


def run_files(cfg: DictConfig, ctx: ProcessContext, jobs: list[Job], generator: nn.Module,
              mel_transform: nn.Module, records: RunRecords) -> None:
    """This rank's share of ``jobs``: vocode each unfinished one and record the outcome."""
    mine = shard(jobs, ctx.rank, ctx.world_size)
    todo = [job for job in mine if not records.is_done(job.name, job.source)]
    log.info("rank %d/%d: %d files, %d already done, writing to %s",
             ctx.rank, ctx.world_size, len(mine), len(mine) - len(todo), records.output_dir)
    bar = tqdm(todo, desc=f"vocode rank {ctx.rank}", unit="file", position=ctx.rank,
               disable=not cfg.progress)
    for job in bar:
        wrote: list[str] = []
        try:
            record = vocode_one(job, generator, mel_transform, cfg, ctx, records.output_dir,
                                wrote)
            records.mark_done(job.name, {**record, **input_identity(job.source)})
        except Exception as error:  # one bad file must not stop the batch
            message = one_line(error)
            log.error("failed %s: %s", job.source, message)
            try:
                records.mark_failed(job.name, str(job.source), message, wrote)
            except OSError as record_error:  # a full or read-only folder: log, go on
                log.error("could not record the failure of %s: %s", job.source,
                          one_line(record_error))
                for name in wrote:  # this file's outputs, now listed nowhere: not left behind
                    (records.output_dir / name).unlink(missing_ok=True)
            if isinstance(error, WriteError) and error.disk_full:  # every next file fails too
                raise RecipeError(f"{message}; stopped after {job.source}: the files done so "
                                  f"far are kept in {records.output_dir}") from error


def run(cfg: DictConfig, overrides: Sequence[str] | None = None) -> dict[str, Any] | None:
    """Vocode every input of ``cfg``; return the summary on rank 0 (None on other ranks).

    ``overrides``: the command line's, which the checkpoint's front end is checked against
    (default: the running Hydra app's; none outside one).
    """
    check_vocode_options(cfg)
    try:
        cfg = checkpoint_front_end(cfg, overrides)
    except ValueError as error:
        raise RecipeError(one_line(error)) from error
    try:
        ctx = init_process_context(cfg.device)
    except ValueError as error:  # a bad device is a setup problem: one line, not a traceback
        raise RecipeError(one_line(error)) from error
    lock = None
    try:
        # the folder can be written before any model or data is loaded
        check_writable_on_main(ctx, str(cfg.output_dir), "output_dir")
        if cfg.num_threads is not None:
            torch.set_num_threads(int(cfg.num_threads))
        output_dir = Path(ctx.broadcast(str(cfg.output_dir)))  # rank 0's run folder for all
        jobs, generator, mel_transform, settings = prepare(cfg, ctx, output_dir)
        records = RunRecords(output_dir)
        problem = None
        if ctx.is_main:
            lock = RunLock(output_dir)
            try:
                lock.acquire()
                claim_folder(records, jobs, settings)
            except (RecipeError, OSError) as error:
                problem = str(error) if isinstance(error, RecipeError) else one_line(error)
        problem = ctx.broadcast(problem)
        if problem is not None:
            raise RecipeError(problem)
        run_files(cfg, ctx, jobs, generator, mel_transform, records)
        ctx.barrier()
        if not ctx.is_main:
            return None
        summary = {**settings_summary(cfg, ctx, settings), **summarise(records, jobs)}
        try:
            write_json(output_dir / SUMMARY_NAME, summary)
        except OSError as error:
            raise RecipeError(one_line(error) if isinstance(error, WriteError) else
                              f"cannot write {str(output_dir / SUMMARY_NAME)!r}: "
                              f"{one_line(error)}") from error
        log.info("%d done, %d failed; summary at %s", len(summary["files"]),
                 len(summary["failures"]), output_dir / SUMMARY_NAME)
        return summary
    finally:
        if lock is not None:
            lock.release()
        ctx.close()


def settings_summary(cfg: DictConfig, ctx: ProcessContext, settings: dict[str, Any]) -> dict:
    """Run-wide settings for ``summary.json`` (the fingerprint's, so they never disagree)."""
    audio = settings["audio"]
    return {
        "sample_rate": int(audio["sample_rate"]),
        "hop": int(audio["hop_length"]),
        "upsample_rates": settings["upsample_rates"],
        "checkpoint": settings["weights"]["checkpoint"],
        "trained": settings["weights"]["checkpoint"] is not None,
        "settings": settings,
        "world_size": ctx.world_size,
        "device": str(ctx.device),
    }


def summarise(records: RunRecords, jobs: list[Job]) -> dict[str, Any]:
    """Per-file records, failures and totals."""
    collected = records.summary([job.name for job in jobs])
    seconds = sum(record["seconds"] for record in collected["files"])
    compute = sum(record["compute_seconds"] for record in collected["files"])
    return {
        "total_seconds": seconds,
        "total_compute_seconds": compute,
        "rtf": compute / seconds if seconds else None,
        "rtf_definition": "compute_seconds / seconds of audio; below 1 is faster than real time",
        **collected,
    }


@hydra.main(config_path="../configs", config_name="vocode", version_base="1.3")
def main(cfg: DictConfig) -> None:
    """Command-line entry point: exit status 1 on a setup problem or any failed file."""
    summary = run_or_exit(run, cfg, log)
    if summary is None or not summary["failures"]:
        return
    failed, total = len(summary["failures"]), len(summary["failures"]) + len(summary["files"])
    if failed == total:
        log.error("all %d files failed; see failures in %s", total, cfg.output_dir)
    else:
        log.error("%d of %d files failed; see failures in %s/%s", failed, total,
                  cfg.output_dir, SUMMARY_NAME)
    sys.exit(EXIT_FAILURE)


if __name__ == "__main__":
    refuse_run_dir_in_input(sys.argv)  # before Hydra writes .hydra/ into the user's folder
    main_leaving_no_refused_run_dir(main, sys.argv)
