"""Copy-synthesis quality of a vocoder against its own untrained weights (Hydra recipe).

    python recipes/evaluate.py                                  # universal V1, bundled speech
    python recipes/evaluate.py inputs=data/allison/validation.txt   # on the held-out split
    python recipes/evaluate.py checkpoint=g_02500000 model_config=config.json inputs=clips/
    python recipes/evaluate.py table.enabled=true num_threads=2     # docs/quality.md

Each input wav's mel (the checkpoint's own front end: its ``config.json`` decides) is
vocoded and compared with the wav: log-mel L1 (mel without fmax, as in training),
multi-resolution STFT distance, STOI and wideband PESQ (``upsampler[metrics]``). With
``untrained_baseline=true`` the same architecture at random initialisation (``seed``) is
scored too, so a number reads against what training added. Writes ``evaluate.json``.

``table.enabled=true`` scores every model of ``table.checkpoints`` on every input set of
``table.inputs`` instead, adds the real-time factor (the generator's compute over the audio's
duration, ``num_threads`` threads) and writes a Markdown table to ``table.output`` with the
command, date, torch version, CPU and threads. Each input is resampled to the model's rate
(librosa) before its mel is taken, and scored there: STOI resamples both signals to 10 kHz
and wideband PESQ to 16 kHz inside the metric, so a 16 kHz recording is scored at (or
below) its own rate; mel L1 and MR-STFT are at the model's rate.
"""

from __future__ import annotations

import inspect
import logging
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import hydra
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig

from upsampler.audio import BUNDLED_SPEECH, MelSpectrogram
from upsampler._atomic import atomic_write_text, write_json
from upsampler.models.generator import MelGenerator
from upsampler.recipe_support.build import build_generator, check_model_matches_audio
from upsampler.recipe_support.front_end import checkpoint_front_end
from upsampler.recipe_support.errors import (
    RecipeError,
    check_run_dir_override,
    one_line,
    run_or_exit,
)
from upsampler.recipe_support.recipe_options import check_evaluate_options, check_writable_dir
from upsampler.recipe_support.provenance import command_line, provenance
from upsampler.training.data import (
    UtteranceDataset,
    default_wav_dir,
    find_wavs,
    read_file_list,
)
from upsampler.training.validation import validate

log = logging.getLogger("evaluate")
FILE_LIST_SUFFIX = ".txt"
METRICS = ("mel_l1", "stft", "stoi", "pesq")
TABLE_COLUMNS = {"stoi": "STOI", "pesq": "PESQ (wb)", "mel_l1": "mel L1", "stft": "MR-STFT",
                 "rtf": "RTF"}  # metric key -> column heading, in the table's order


def input_files(inputs: str | None, wav_dir: str | None) -> list[Path]:
    """A wav, a folder of wavs, or a HiFi-GAN file list: its files in ``wav_dir``, else in
    ``wavs/`` beside the list when that exists, else beside the list (as train.py reads it)."""
    if inputs is None:
        return [BUNDLED_SPEECH]
    path = Path(inputs).expanduser()
    if path.suffix == FILE_LIST_SUFFIX:
        return read_file_list(path, Path(wav_dir) if wav_dir else default_wav_dir(path))
    if path.is_dir():
        return find_wavs(path)
    if not path.is_file():
        raise ValueError(f"inputs must be a wav, a folder or a .txt file list, got {inputs!r}")
    return [path]


def untrained_twin(generator: MelGenerator, cfg: DictConfig, seed: int) -> MelGenerator:
    """The architecture of ``generator`` at random initialisation, weight norm folded.

    Same class and the same constructor fields, read off ``generator`` itself (every field
    of ``HiFiGANGenerator`` and ``BigVGANGenerator`` is an attribute of the built model), so
    a BigVGAN checkpoint is compared with an untrained BigVGAN; ``cfg`` is not consulted.
    ``torch.manual_seed(seed)`` precedes the construction.
    """
    cls = type(generator)
    fields = tuple(inspect.signature(cls.__init__).parameters)[1:]
    missing = [field for field in fields if not hasattr(generator, field)]
    if missing:
        raise ValueError(f"generator {cls.__name__} does not record its fields {missing}; "
                         f"untrained_baseline needs a HiFiGANGenerator or a BigVGANGenerator")
    torch.manual_seed(seed)
    twin = cls(**{field: getattr(generator, field) for field in fields})
    twin.remove_weight_norm()
    return twin.eval()


@contextmanager
def compute_timer(generator: torch.nn.Module) -> Iterator[list[float]]:
    """Sum the wall-clock seconds of every ``generator`` forward while the block runs."""
    total, started = [0.0], [0.0]

    def start(*_: Any) -> None:
        started[0] = time.perf_counter()

    def stop(*_: Any) -> None:
        total[0] += time.perf_counter() - started[0]

    handles = [generator.register_forward_pre_hook(start), generator.register_forward_hook(stop)]
    try:
        yield total
    finally:
        for handle in handles:
            handle.remove()


def score(generator: torch.nn.Module, mel_transform: MelSpectrogram,
          utterances: UtteranceDataset) -> dict[str, Any]:
    """The metrics of ``generator`` over ``utterances`` and its real-time factor."""
    loss_mel = MelSpectrogram(mel_transform.sample_rate, mel_transform.n_fft,
                              mel_transform.hop_length, mel_transform.win_length,
                              mel_transform.num_mels, mel_transform.fmin, fmax=None)
    with compute_timer(generator) as compute:
        scored = validate(generator, (utterances[i] for i in range(len(utterances))), loss_mel,
                          int(mel_transform.sample_rate), torch.device("cpu"), keep_examples=0)
    seconds = sum(wav.numel() for wav in utterances.wavs) / mel_transform.sample_rate
    return {**scored.metrics, "rtf": compute[0] / seconds, "seconds": seconds}


def quality_table(cfg: DictConfig, overrides: Sequence[str] | None) -> dict[str, Any]:
    """Every ``table.checkpoints`` model on every ``table.inputs`` set; writes the Markdown."""
    rows: list[dict[str, Any]] = []
    for name in cfg.table.checkpoints:
        try:
            model_cfg = cfg.copy()
            model_cfg.checkpoint = name
            model_cfg = checkpoint_front_end(model_cfg, overrides)
            mel_transform = instantiate(model_cfg.audio)
            generator = build_generator(model_cfg, seed=int(cfg.seed))
            check_model_matches_audio(generator, mel_transform)
        except (ValueError, TypeError, OSError) as error:
            raise RecipeError(f"table.checkpoints: {name!r}: {one_line(error)}") from error
        for set_name, inputs in cfg.table.inputs.items():
            try:
                utterances = UtteranceDataset(input_files(inputs, None), mel_transform)
            except (ValueError, TypeError, OSError) as error:
                raise RecipeError(f"table.inputs.{set_name}: {one_line(error)}") from error
            found = score(generator, mel_transform, utterances)
            rows.append({"model": str(name), "inputs": str(set_name), **found,
                         "utterances": len(utterances),
                         "sample_rate": int(mel_transform.sample_rate)})
            log.info("%s on %s (%d utterances, %.1f s): %s", name, set_name, len(utterances),
                     found["seconds"], ", ".join(f"{TABLE_COLUMNS[key]} {found[key]:.3f}"
                                                 for key in TABLE_COLUMNS
                                                 if found.get(key) is not None))
    output = Path(cfg.table.output)
    atomic_write_text(output, quality_markdown(rows, cfg))
    log.info("wrote %s", output)
    return {"rows": rows, "output": str(output)}


def quality_markdown(rows: list[dict[str, Any]], cfg: DictConfig) -> str:
    """The quality table as Markdown, with its provenance and how it was scored."""
    def cell(value: Any) -> str:
        return "n/a" if value is None else f"{value:.3f}"

    sets = ", ".join(f"`{name}` ({'the bundled ARCTIC recording' if path is None else path})"
                     for name, path in cfg.table.inputs.items())
    lines = [
        "# Copy-synthesis quality", "",
        provenance(command_line()), "",
        f"Input sets: {sets}. Each input's mel is taken at the model's rate (16 kHz recordings "
        f"resampled by librosa) and the output scored against the resampled input: STOI "
        f"resamples both to 10 kHz and wideband PESQ to 16 kHz inside the metric; mel L1 (mel "
        f"without fmax) and the multi-resolution STFT distance are at the model's rate. RTF: "
        f"the generator's compute over the audio's duration (below 1 is faster than real "
        f"time). `none` is the first model's architecture at random initialisation (seed "
        f"{int(cfg.seed)}).", "",
        "| model | inputs | utterances | rate (Hz) | " + " | ".join(TABLE_COLUMNS.values()) + " |",
        "|---|---|---|---|" + "---|" * len(TABLE_COLUMNS),
    ]
    for row in rows:
        lines.append(f"| {row['model']} | {row['inputs']} | {row['utterances']} | "
                     f"{row['sample_rate']} | "
                     + " | ".join(cell(row.get(key)) for key in TABLE_COLUMNS) + " |")
    return "\n".join(lines) + "\n"


def run(cfg: DictConfig, overrides: Sequence[str] | None = None) -> dict[str, Any]:
    """Score the vocoder of ``cfg`` (and its untrained twin) on every input.

    ``overrides``: the command line's, checked against the checkpoint's front end (default:
    the running Hydra app's).
    """
    check_evaluate_options(cfg)
    if cfg.table.enabled:
        check_writable_dir(Path(cfg.table.output).expanduser().parent, "table.output's folder")
        if cfg.num_threads is not None:
            torch.set_num_threads(int(cfg.num_threads))
        return quality_table(cfg, overrides)
    check_writable_dir(cfg.output_dir, "output_dir")
    try:
        if cfg.num_threads is not None:
            torch.set_num_threads(int(cfg.num_threads))
        cfg = checkpoint_front_end(cfg, overrides)
        mel_transform = instantiate(cfg.audio)
        generator = build_generator(cfg, seed=int(cfg.seed))
        check_model_matches_audio(generator, mel_transform)
        files = input_files(cfg.inputs, cfg.wav_dir)
        utterances = UtteranceDataset(files, mel_transform)
    except (ValueError, TypeError, OSError) as error:
        raise RecipeError(one_line(error)) from error
    models = {"model": generator}
    if cfg.untrained_baseline and cfg.checkpoint is not None:
        models["untrained"] = untrained_twin(generator, cfg, int(cfg.seed))
    results: dict[str, Any] = {"checkpoint": cfg.checkpoint, "model_config": cfg.model_config,
                               "inputs": [str(f) for f in files],
                               "sample_rate": int(mel_transform.sample_rate)}
    for name, model in models.items():
        results[name] = score(model, mel_transform, utterances)
        log.info("%s: %s", name, ", ".join(
            f"{key} {results[name][key]:.3f}" for key in METRICS
            if results[name].get(key) is not None))
    write_json(Path(cfg.output_dir) / "evaluate.json", results)
    log.info("%d utterances; wrote %s", len(utterances), Path(cfg.output_dir) / "evaluate.json")
    return results


@hydra.main(config_path="../configs", config_name="evaluate", version_base="1.3")
def main(cfg: DictConfig) -> None:
    """Command-line entry point: a setup problem exits with status 1 and one log line."""
    run_or_exit(run, cfg, log)


if __name__ == "__main__":
    check_run_dir_override(sys.argv)
    main()
