"""The set-up of ``recipes/vocode.py``: what to vocode, with what, and where it may write.

:func:`prepare` finds the jobs and builds the generator and the mel front end;
:func:`refuse_foreign_outputs` and :func:`refuse_run_dir_in_input` refuse a run that would
write over an input or over files no earlier run wrote. One input's vocoding is in
:mod:`.vocoding`.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any, NamedTuple

from hydra.utils import instantiate
from omegaconf import DictConfig
from torch import nn

from upsampler.audio import BUNDLED_SPEECH
from upsampler.recipe_support.build import (
    build_generator,
    check_model_matches_audio,
    settings_fingerprint,
)
from upsampler.recipe_support.distributed import ProcessContext
from upsampler.recipe_support.errors import (
    EXIT_FAILURE,
    PrintableLogFilter,
    RecipeError,
    one_line,
    run_dir_override,
)
from upsampler.recipe_support.records import RunRecords, find_inputs, is_run_folder, output_names

log = logging.getLogger("vocode")
log.addFilter(PrintableLogFilter())  # input names need not be valid UTF-8; once, for every module

SUMMARY_NAME = "summary.json"
FIGURES_DIR = "figures"
UNTRAINED_WARNING = (
    "the generator has untrained (randomly initialised) weights, so the output is noise-like, "
    "not speech. For speech use the shipped demo vocoder (checkpoint=demo, the default) or a "
    "trained HiFi-GAN generator: python recipes/vocode.py input=<wav, folder or mel> "
    "checkpoint=<path/to/g_02500000> model_config=<path/to/config.json>"
)


class Job(NamedTuple):
    """One input file and its output name relative to the run folder."""

    source: Path
    name: str

    @property
    def figure(self) -> str:
        return f"{FIGURES_DIR}/{Path(self.name).with_suffix('.png').as_posix()}"


def prepare(
    cfg: DictConfig, ctx: ProcessContext, output_dir: Path
) -> tuple[list[Job], nn.Module, nn.Module, dict[str, Any]]:
    """The jobs, the generator, the mel front end and the settings fingerprint.

    Each folder of the input that is not searched (hidden, an earlier run, the run's own
    output) is logged with the reason. Any problem raises ``RecipeError`` with a one-line
    message.
    """
    try:
        source = Path(cfg.input) if cfg.input is not None else BUNDLED_SPEECH
        def on_skip(folder: Path, reason: str) -> None:
            if ctx.is_main:
                log.info("not searched for inputs: %s (%s)", folder, reason)

        inputs = find_inputs(source, exclude=output_dir, on_skip=on_skip)
        jobs = [Job(*pair) for pair in zip(inputs, output_names(inputs, source))]
        mel_transform = instantiate(cfg.audio).to(ctx.device)
        generator = build_generator(cfg, device=ctx.device)  # every rank: the same weights
        check_model_matches_audio(generator, mel_transform)
        settings = settings_fingerprint(cfg, generator, mel_transform)
    except Exception as error:  # setup problems end the run with one line, not a traceback
        raise RecipeError(one_line(error)) from error
    if cfg.input is None:
        log.info("no input given: vocoding the bundled speech recording %s", source)
    if cfg.checkpoint is None:
        log.warning(UNTRAINED_WARNING)
    return jobs, generator, mel_transform, settings


def refuse_foreign_outputs(records: RunRecords, jobs: list[Job]) -> None:
    """Raise ``RecipeError`` if an output would be an input or a file no record lists."""
    inputs = {job.source.resolve(): job.source for job in jobs}
    owned = records.owned()
    for job in jobs:
        for name in (job.name, job.figure):
            target = records.output_dir / name
            if target.resolve() in inputs:
                raise RecipeError(
                    f"output {str(target)!r} would overwrite input "
                    f"{str(inputs[target.resolve()])!r}; choose a hydra.run.dir (or output_dir) "
                    f"outside the input's folder"
                )
            if target.exists() and name not in owned:
                raise RecipeError(
                    f"output {str(target)!r} for input {str(job.source)!r} already exists and "
                    f"was not written by a run into {str(records.output_dir)!r}; choose another "
                    f"hydra.run.dir (or output_dir)"
                )


def run_dir_in_input_problem(argv: list[str]) -> str | None:
    """Why ``hydra.run.dir`` on the command line must not be used with its ``input=``, or None.

    Refused: the input folder itself, and an existing, non-empty folder inside it that is
    not an earlier run (no ``records/`` or ``.hydra/``). Hydra writes ``.hydra/`` and a log
    there before the recipe runs, and an input search skips any folder holding ``.hydra/``,
    so the user's files in it would silently drop out of every later run. A new folder
    inside the input (``input=clips hydra.run.dir=clips/vocoded``) is fine: the search
    leaves the run's own folder out.
    """
    run_dir = run_dir_override(argv)
    inputs = [arg.partition("=")[2] for arg in argv[1:] if arg.partition("=")[0] == "input"]
    if run_dir is None or not inputs or not inputs[-1] or "$" in inputs[-1]:
        return None
    root = Path(inputs[-1]).expanduser()
    if not root.is_dir():
        return None
    run, root = Path(run_dir).expanduser().resolve(), root.resolve()
    if run == root:
        return (f"hydra.run.dir={run_dir!r} is the input folder input={inputs[-1]!r}; choose a "
                f"new folder (the outputs would be mixed with the inputs)")
    if root in run.parents and run.is_dir() and not is_run_folder(run) and any(run.iterdir()):
        return (f"hydra.run.dir={run_dir!r} is an existing folder of input={inputs[-1]!r} that "
                f"no earlier run wrote; Hydra would write .hydra/ into it and later runs would "
                f"skip its files as an earlier run's; choose a new folder")
    return None


def refuse_run_dir_in_input(argv: list[str]) -> None:
    """Exit with status 1 and one line on stderr when :func:`run_dir_in_input_problem`
    finds one; call it before Hydra starts (it writes into the run folder at once)."""
    problem = run_dir_in_input_problem(argv)
    if problem is not None:
        print(problem, file=sys.stderr)
        sys.exit(EXIT_FAILURE)


__all__ = ["FIGURES_DIR", "Job", "SUMMARY_NAME", "UNTRAINED_WARNING", "prepare",
           "refuse_foreign_outputs", "refuse_run_dir_in_input", "run_dir_in_input_problem"]
