"""Copy-synthesis quality of a vocoder against its own untrained weights (Hydra recipe).

    python recipes/evaluate.py                                  # shipped demo on the bundled speech
    python recipes/evaluate.py inputs=data/allison/validation.txt   # on the held-out split
    python recipes/evaluate.py checkpoint=g_02500000 model_config=config.json inputs=clips/

Each input wav's mel (the checkpoint's own front end: its ``config.json`` decides) is
vocoded and compared with the wav: log-mel L1 (mel without fmax, as in training),
multi-resolution STFT distance, STOI and wideband PESQ (``upsampler[metrics]``). With
``untrained_baseline=true`` the same architecture at random initialisation (``seed``) is
scored too, so a number reads against what training added. Writes ``evaluate.json``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import hydra
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig

from upsampler.audio import BUNDLED_SPEECH, MelSpectrogram
from upsampler.files import write_json
from upsampler.models.checkpoint import generator_kwargs
from upsampler.models.hifigan import HiFiGANGenerator
from upsampler.recipe_support.build import (
    build_generator,
    check_model_matches_audio,
    checkpoint_front_end,
)
from upsampler.recipe_support.errors import RecipeError, one_line, run_or_exit
from upsampler.recipe_support.options import check_options
from upsampler.training.data import UtteranceDataset, find_wavs, read_file_list
from upsampler.training.validation import validate

log = logging.getLogger("evaluate")
FILE_LIST_SUFFIX = ".txt"
METRICS = ("mel_l1", "stft", "stoi", "pesq")


def input_files(inputs: str | None, wav_dir: str | None) -> list[Path]:
    """A wav, a folder of wavs, or a HiFi-GAN file list (wavs in ``wav_dir`` or ``wavs/``)."""
    if inputs is None:
        return [BUNDLED_SPEECH]
    path = Path(inputs).expanduser()
    if path.suffix == FILE_LIST_SUFFIX:
        return read_file_list(path, Path(wav_dir) if wav_dir else path.parent / "wavs")
    if path.is_dir():
        return find_wavs(path)
    if not path.is_file():
        raise ValueError(f"inputs must be a wav, a folder or a .txt file list, got {inputs!r}")
    return [path]


def untrained_twin(generator: HiFiGANGenerator, cfg: DictConfig, seed: int) -> HiFiGANGenerator:
    """The architecture of ``generator`` at random initialisation, weight norm folded."""
    torch.manual_seed(seed)
    if cfg.model_config is not None:
        twin = HiFiGANGenerator(**generator_kwargs(cfg.model_config))
    else:
        twin = instantiate(cfg.model)
    twin.remove_weight_norm()
    return twin.eval()


def run(cfg: DictConfig, overrides: Sequence[str] | None = None) -> dict[str, Any]:
    """Score the vocoder of ``cfg`` (and its untrained twin) on every input.

    ``overrides``: the command line's, checked against the checkpoint's front end (default:
    the running Hydra app's).
    """
    check_options(cfg, booleans=("untrained_baseline",), integers=("seed",),
                  positive_or_null=("num_threads",))
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
    loss_mel = MelSpectrogram(mel_transform.sample_rate, mel_transform.n_fft,
                              mel_transform.hop_length, mel_transform.win_length,
                              mel_transform.num_mels, mel_transform.fmin, fmax=None)
    models = {"model": generator}
    if cfg.untrained_baseline and cfg.checkpoint is not None:
        models["untrained"] = untrained_twin(generator, cfg, int(cfg.seed))
    results: dict[str, Any] = {"checkpoint": cfg.checkpoint, "model_config": cfg.model_config,
                               "inputs": [str(f) for f in files],
                               "sample_rate": int(mel_transform.sample_rate)}
    for name, model in models.items():
        scored = validate(model, (utterances[i] for i in range(len(utterances))), loss_mel,
                          int(mel_transform.sample_rate), torch.device("cpu"), keep_examples=0)
        results[name] = scored.metrics
        log.info("%s: %s", name, ", ".join(
            f"{key} {scored.metrics[key]:.3f}" for key in METRICS
            if scored.metrics.get(key) is not None))
    write_json(Path(cfg.output_dir) / "evaluate.json", results)
    log.info("%d utterances; wrote %s", len(utterances), Path(cfg.output_dir) / "evaluate.json")
    return results


@hydra.main(config_path="../configs", config_name="evaluate", version_base="1.3")
def main(cfg: DictConfig) -> None:
    """Command-line entry point: a setup problem exits with status 1 and one log line."""
    run_or_exit(run, cfg, log)


if __name__ == "__main__":
    main()
