"""Export a vocoder generator to ONNX and a torch.export program, verified (Hydra recipe).

    python recipes/export.py                                      # untrained V1
    python recipes/export.py model=hifigan_v3 formats=[onnx]
    python recipes/export.py formats=[torchscript]                # deprecated by torch 2.13
    python recipes/export.py model=bigvgan_base_22k lowering=conv_transpose
    python recipes/export.py checkpoint=g_02500000 model_config=config.json name=lj_v1
    python recipes/export.py streaming.chunk_frames=8             # + the streaming step
    python recipes/export.py -m model=hifigan_v1,hifigan_v2,hifigan_v3 \
        upsampler=transposed,nearest_conv,linear_conv,subpixel,subpixel_icnr   # a matrix

Every option is checked before anything is built (one line naming it otherwise). Writes
``<name>.onnx`` and ``<name>.pt2`` (a ``torch.export`` program) to temporary names in
``<output_dir>``, runs each on seeded random mels of ``verify_frames`` lengths (none of
them the export's), logs the max abs error against eager PyTorch per format and the ONNX
graph's node types, then renames the files into place and writes ``export.json``. An error
above ``tolerance`` stops the run with status 1 and leaves no file under a final name.
``lowering=conv_transpose`` writes our transposed layers as ONNX's own ``ConvTranspose``
node instead of our dense formulation (same numbers). TorchScript (``<name>.pt``) is
written only when ``formats`` names it, with a warning: torch 2.13 deprecates it.
``streaming.chunk_frames=<chunk>`` adds the fixed-size streaming step
(``upsampler.export.export_streaming``): ``<name>_stream<chunk>.onnx`` with ``onnx`` in
``formats``, ``<name>_stream<chunk>.pt2`` with ``program``, each fed seeded random mels of
``verify_frames`` lengths chunk by chunk (``OnnxStream``; the loaded program in a host
loop) and checked against eager like the other files, under the same all-or-nothing rename.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from functools import partial
from pathlib import Path
from typing import Any, Callable, NamedTuple

import hydra
import torch
from omegaconf import DictConfig, OmegaConf
from torch import Tensor, nn

from upsampler.export import (
    LOWERINGS,
    MIN_EXPORT_LENGTH,
    OnnxStream,
    export_onnx,
    export_program,
    export_streaming,
    export_torchscript,
    exportable,
    max_abs_error,
    onnx_node_types,
    run_onnx,
    run_program,
    run_torchscript,
    weights_fingerprint,
)
from upsampler.recipe_support.build import build_generator, resolve_checkpoint
from upsampler.recipe_support.errors import (
    RecipeError,
    check_run_dir_override,
    one_line,
    run_or_exit,
)
from upsampler._atomic import WriteError, temporary_path, write_json
from upsampler.recipe_support.recipe_options import check_writable_dir
from upsampler.recipe_support.options import (
    check_choice,
    check_group,
    check_int_list,
    check_number,
    check_options,
    check_path,
)

log = logging.getLogger("export")

SUFFIXES = {"onnx": ".onnx", "program": ".pt2", "torchscript": ".pt"}
DEPRECATED_FORMATS = {
    "torchscript": "torch 2.13 deprecates TorchScript (torch.jit.trace/save/load); use "
                   "formats=[onnx, program] (ONNX, torch.export .pt2) or torch.compile",
}
SUMMARY_FILE = "export.json"
TRACE = "trace"  # torch.jit.script cannot compile a whole generator
MIN_EXPORT_BATCH = 2  # a batch of 1 would be traced as a constant
STREAM_FORMATS = ("onnx", "program")  # the formats with a streaming step (.onnx, .pt2)
MIN_STREAM_CHUNK = 1  # mel frames per streaming step
MIN_STREAM_BATCH = 1  # the step's shapes are fixed: a batch of 1 is no constant-folding risk
STREAM_METADATA_FILE = "metadata.json"  # the .pt2 step's extra file (export_streaming)

Runner = Callable[[Tensor], Tensor]  # a written file run on a mel: (B, num_mels, T) -> audio


class ExportError(RecipeError):
    """A setup problem or a failed verification; reported as one line."""


def inference_setup(cfg: DictConfig) -> tuple[nn.Module, int]:
    """The configured generator (from a checkpoint when given) as an inference copy, and
    the sample rate of its front end (a checkpoint's ``config.json`` overrides ``audio``).

    Any problem building it (bad model config, missing or mismatched checkpoint) raises
    ``ExportError`` with a one-line message.
    """
    try:
        resolved = resolve_checkpoint(cfg)  # a pretrained name becomes its files, logged once
        return exportable(build_generator(resolved)), int(resolved.audio.sample_rate)
    except Exception as error:  # setup problems end the run with one line, not a traceback
        raise ExportError(one_line(error)) from error


def inference_generator(cfg: DictConfig) -> nn.Module:
    """The configured generator as an inference copy (see :func:`inference_setup`)."""
    return inference_setup(cfg)[0]


def write_file(fmt: str, generator: nn.Module, path: Path, example: Tensor,
               cfg: DictConfig) -> Runner:
    """Export ``generator`` in format ``fmt`` to ``path``; return a runner of the written file."""
    if fmt == "torchscript":
        export_torchscript(generator, path, example, cfg.torchscript_method)
        return lambda mel: run_torchscript(path, mel)
    if fmt == "program":
        export_program(generator, path, example)
        return lambda mel: run_program(path, mel)
    export_onnx(generator, path, example, lowering=cfg.lowering)
    return lambda mel: run_onnx(path, mel, cfg.num_threads)


def write_stream(fmt: str, generator: nn.Module, path: Path, cfg: DictConfig,
                 sample_rate: int) -> Runner:
    """Export ``generator``'s streaming step (``cfg.streaming``) as ``fmt`` to ``path``;
    return a runner that streams a whole mel through the written file and flushes it."""
    chunk = int(cfg.streaming.chunk_frames)
    export_streaming(generator, chunk, path, batch_size=int(cfg.streaming.batch_size),
                     sample_rate=sample_rate, lowering=cfg.streaming.lowering)
    if fmt == "program":
        return program_stream(path)
    stream = OnnxStream(path, cfg.num_threads, chunk_frames=chunk,
                        fingerprint=weights_fingerprint(generator))

    def run_stream(mel: Tensor) -> Tensor:
        stream.reset()
        pieces = (stream.step(mel), stream.flush())
        return torch.cat([torch.from_numpy(piece) for piece in pieces], dim=-1)

    return run_stream


def program_stream(path: Path) -> Runner:
    """A runner of the streaming step program at ``path`` as a host drives it.

    Each call feeds the mel in chunks of the step's size, the last zero-padded with its real
    frame count, then empty chunks (0 frames) until the step's delay is made up, and returns
    the audio after the delay, as long as the offline output.
    """
    extra = {STREAM_METADATA_FILE: ""}
    step = torch.export.load(str(path), extra_files=extra).module()
    meta = json.loads(extra[STREAM_METADATA_FILE])
    chunk, hop, delay = meta["chunk_frames"], meta["hop_length"], meta["delay_samples"]

    def run_stream(mel: Tensor) -> Tensor:
        state = [torch.zeros(entry["shape"], dtype=getattr(torch, entry["dtype"]))
                 for entry in meta["states"]]
        end = delay + mel.shape[-1] * hop
        pieces: list[Tensor] = []
        produced = start = 0
        with torch.no_grad():
            while produced < end:
                piece = mel[..., start:start + chunk]
                frames = piece.shape[-1]
                piece = torch.nn.functional.pad(piece, (0, chunk - frames))
                audio, *state = step(piece, torch.tensor(frames), *state)
                pieces.append(audio)
                produced += audio.shape[-1]
                start += chunk
        return torch.cat(pieces, dim=-1)[..., delay:end]

    return run_stream


def node_summary(node_types: dict[str, int]) -> str:
    """``"412 nodes: Conv 74, LeakyRelu 69, ..."``, most frequent first."""
    listed = ", ".join(f"{op} {count}" for op, count in node_types.items())
    return f"{sum(node_types.values())} nodes: {listed}"


def check_config(cfg: DictConfig) -> None:
    """Raise ``ExportError`` naming the first option of configs/export.yaml whose value is
    not allowed; nothing is built, read or written. (The ``model``, ``audio`` and
    ``upsampler`` groups are checked when the generator is built.)"""
    try:
        check_path(cfg, "checkpoint", nullable=True)
        check_path(cfg, "model_config", nullable=True)
        check_path(cfg, "output_dir")
        check_options(cfg, integers=("seed",), positive_or_null=("num_threads",))
        check_number(cfg, "example_frames", minimum=MIN_EXPORT_LENGTH, integer=True)
        check_number(cfg, "batch_size", minimum=MIN_EXPORT_BATCH, integer=True)
        check_number(cfg, "tolerance", minimum=0)
        check_choice(cfg, "lowering", LOWERINGS)
        verify_frames = check_int_list(cfg, "verify_frames", MIN_EXPORT_LENGTH)
        check_group(cfg, "streaming")
        check_number(cfg, "streaming.chunk_frames", minimum=MIN_STREAM_CHUNK, integer=True,
                     nullable=True)
        check_number(cfg, "streaming.batch_size", minimum=MIN_STREAM_BATCH, integer=True)
        check_choice(cfg, "streaming.lowering", LOWERINGS)
    except RecipeError as error:
        raise ExportError(str(error)) from error
    name = cfg.name
    if not isinstance(name, str) or not name.strip() or Path(name).name != name \
            or name in (".", ".."):
        raise ExportError(f"name must be a file stem without a folder (e.g. generator), "
                          f"got {name!r}")
    if cfg.torchscript_method != TRACE:
        raise ExportError(
            f"torchscript_method must be {TRACE!r}, got {cfg.torchscript_method!r}: the recipe "
            f"exports a generator, which torch.jit.script cannot compile (it scripts single "
            f"layers only; see upsampler.export.export_torchscript)")
    formats = cfg.formats
    if isinstance(formats, str) or not OmegaConf.is_list(formats) and not isinstance(formats, list):
        raise ExportError(f"formats must be a non-empty list among {sorted(SUFFIXES)}, "
                          f"got {formats!r}")
    unknown = [fmt for fmt in formats if fmt not in SUFFIXES]
    if not formats or unknown:
        raise ExportError(f"formats must be among {sorted(SUFFIXES)}, got {unknown or []}")
    if cfg.example_frames in verify_frames:
        raise ExportError(
            f"verify_frames {verify_frames} must not contain example_frames="
            f"{cfg.example_frames}: the check is at lengths the export has not seen"
        )
    check_streaming(cfg.streaming.chunk_frames, list(formats), verify_frames)


def check_streaming(chunk: int | None, formats: list[str], verify_frames: list[int]) -> None:
    """Raise ``ExportError`` when ``streaming.chunk_frames`` asks for a step no format writes,
    or when no ``verify_frames`` length ends in a partial chunk (chunks above one frame)."""
    if chunk is None:
        return
    if not set(formats) & set(STREAM_FORMATS):
        raise ExportError(
            f"streaming.chunk_frames={chunk} needs formats with a streaming step (any of "
            f"{list(STREAM_FORMATS)}), got formats={formats}: torchscript has none")
    if chunk > MIN_STREAM_CHUNK and all(frames % chunk == 0 for frames in verify_frames):
        raise ExportError(
            f"verify_frames {verify_frames} must hold a length that is not a multiple of "
            f"streaming.chunk_frames={chunk}: the check must end in a partial chunk")


class Target(NamedTuple):
    """One file of the run: its final path, the batch it is verified at, and the call that
    writes it under a given temporary name and returns its result (``ExportError`` when it
    fails or differs from eager by more than ``tolerance``)."""

    path: Path
    batch_size: int
    write_and_verify: Callable[[Path], dict[str, Any]]


def run(cfg: DictConfig) -> dict[str, Any]:
    """Export every format of ``cfg.formats`` (and the streaming steps when
    ``streaming.chunk_frames`` is set); return ``{file: {path, max_abs_error, ...}}``, the
    files keyed by format (``onnx``, ...) and ``streaming <format>``.

    Every option is checked first. Each file is written to a temporary name beside its
    target and verified there; only when every file is within ``tolerance`` are they
    renamed into place and ``export.json`` written, so a failed verification leaves no
    file under a final name (an earlier export's files stay as they were).
    """
    check_config(cfg)
    for fmt in sorted(set(cfg.formats) & set(DEPRECATED_FORMATS)):
        log.warning("formats=%s: %s", fmt, DEPRECATED_FORMATS[fmt])
    try:
        check_writable_dir(cfg.output_dir, "output_dir")
    except RecipeError as error:
        raise ExportError(str(error)) from error
    if cfg.num_threads is not None:
        torch.set_num_threads(int(cfg.num_threads))
    generator, sample_rate = inference_setup(cfg)
    output_dir = Path(cfg.output_dir)
    try:
        output_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ExportError(f"output_dir {str(output_dir)!r} cannot be created: "
                          f"{one_line(error)}") from error
    rng = torch.Generator().manual_seed(cfg.seed)
    num_mels = int(generator.num_mels)
    example = torch.randn(cfg.batch_size, num_mels, cfg.example_frames, generator=rng)
    mels = [torch.randn(cfg.batch_size, num_mels, frames, generator=rng)
            for frames in cfg.verify_frames]
    with torch.no_grad():
        expected = [generator(mel) for mel in mels]
    targets: dict[str, Target] = {}
    for fmt in cfg.formats:
        path = output_dir / f"{cfg.name}{SUFFIXES[fmt]}"
        targets[fmt] = Target(path, cfg.batch_size, partial(
            export_and_verify, fmt, generator, path, example=example, mels=mels,
            expected=expected, cfg=cfg))
    targets.update(stream_targets(cfg, generator, sample_rate, output_dir, rng))
    results = write_verified(output_dir, targets, list(cfg.verify_frames))
    summary = {"checkpoint": cfg.checkpoint, "hop_length": int(generator.hop_length),
               "verify_frames": list(cfg.verify_frames),
               "formats": {fmt: results[fmt] for fmt in cfg.formats}}
    streams = {fmt: results[stream_key(fmt)] for fmt in STREAM_FORMATS
               if stream_key(fmt) in results}
    if streams:
        summary["streaming"] = {
            "chunk_frames": cfg.streaming.chunk_frames, "batch_size": cfg.streaming.batch_size,
            "lowering": cfg.streaming.lowering, "sample_rate": sample_rate, "files": streams}
    try:
        write_json(output_dir / SUMMARY_FILE, summary)
    except OSError as error:  # WriteError: "cannot write '<path>': no space left on device"
        raise ExportError(one_line(error) if isinstance(error, WriteError) else
                          f"cannot write {str(output_dir / SUMMARY_FILE)!r}: "
                          f"{one_line(error)}") from error
    return results


def stream_key(fmt: str) -> str:
    """The key of format ``fmt``'s streaming step among the run's files and in messages."""
    return f"streaming {fmt}"


def stream_targets(cfg: DictConfig, generator: nn.Module, sample_rate: int, output_dir: Path,
                   rng: torch.Generator) -> dict[str, Target]:
    """The streaming steps ``cfg`` asks for (none without ``streaming.chunk_frames``), each
    verified on random mels of ``verify_frames`` lengths drawn from ``rng`` at the step's
    batch size."""
    chunk = cfg.streaming.chunk_frames
    formats = [fmt for fmt in STREAM_FORMATS if fmt in cfg.formats]
    if chunk is None or not formats:
        return {}
    batch, num_mels = int(cfg.streaming.batch_size), int(generator.num_mels)
    mels = [torch.randn(batch, num_mels, frames, generator=rng) for frames in cfg.verify_frames]
    with torch.no_grad():
        expected = [generator(mel) for mel in mels]
    targets = {}
    for fmt in formats:
        path = output_dir / f"{cfg.name}_stream{chunk}{SUFFIXES[fmt]}"
        write = partial(write_stream, fmt, generator, cfg=cfg, sample_rate=sample_rate)
        targets[stream_key(fmt)] = Target(path, batch, partial(
            verify_file, stream_key(fmt), path, write, mels=mels, expected=expected,
            tolerance=cfg.tolerance))
    return targets


def write_verified(output_dir: Path, targets: dict[str, Target],
                   verify_frames: list[int]) -> dict[str, dict[str, Any]]:
    """Write and verify every target under a temporary name beside it, then rename them all
    into place; return each one's result.

    A refused file (``ExportError``) or a file-system error leaves no file under a final
    name and no temporary file behind.
    """
    refuse_foreign_files(output_dir, [target.path for target in targets.values()])
    results: dict[str, dict[str, Any]] = {}
    temps: dict[str, Path] = {}
    try:
        for key, target in targets.items():
            temps[key] = temp = temporary_path(target.path)
            results[key] = target.write_and_verify(temp)
        for key, target in targets.items():
            os.replace(temps.pop(key), target.path)
            log.info("wrote %s (%s, %.1f MiB); max abs error against eager %s at %s mel "
                     "frames, batch %d", target.path, key, target.path.stat().st_size / 2**20,
                     ", ".join(f"{e:.2g}" for e in results[key]["max_abs_errors"]),
                     verify_frames, target.batch_size)
    except OSError as error:  # a read-only or full output folder
        raise ExportError(f"cannot write into {str(output_dir)!r}: {one_line(error)}; no "
                          f"file was written") from error
    finally:
        for temp in temps.values():
            temp.unlink(missing_ok=True)
    return results


def export_and_verify(fmt: str, generator: nn.Module, path: Path, temp: Path, example: Tensor,
                      mels: list[Tensor], expected: list[Tensor],
                      cfg: DictConfig) -> dict[str, Any]:
    """Export ``fmt`` to ``temp``, run it on ``mels`` and return its result for ``path``
    (an ONNX file's also names its lowering and node types); see :func:`verify_file`."""
    def onnx_details() -> dict[str, Any]:
        node_types = onnx_node_types(temp)
        log.info("onnx graph (lowering=%s): %s", cfg.lowering, node_summary(node_types))
        return {"lowering": cfg.lowering, "node_types": node_types}

    return verify_file(fmt, path, partial(write_file, fmt, generator, example=example, cfg=cfg),
                       temp, mels, expected, cfg.tolerance,
                       details=onnx_details if fmt == "onnx" else None)


def verify_file(label: str, path: Path, write: Callable[[Path], Runner], temp: Path,
                mels: list[Tensor], expected: list[Tensor], tolerance: float,
                details: Callable[[], dict[str, Any]] | None = None) -> dict[str, Any]:
    """``write(temp)``, run the written file on ``mels`` and return its result for ``path``:
    ``{path, max_abs_error, max_abs_errors}`` (one error per mel) and ``details()``.

    Raises ``ExportError`` (one line, starting with ``label``) when the exporter or the
    runtime fails or the file differs from eager by more than ``tolerance`` (the caller
    removes ``temp``); an ``OSError`` passes through.
    """
    try:
        runner = write(temp)
        errors = [max_abs_error(runner(mel), ref) for mel, ref in zip(mels, expected)]
    except OSError:
        raise
    except Exception as error:  # an exporter or runtime failure: one line, not a traceback
        raise ExportError(f"{label} export failed: {one_line(error)}; no file was written"
                          ) from error
    error = max(errors)
    result: dict[str, Any] = {"path": str(path), "max_abs_error": error,
                              "max_abs_errors": errors}  # one per verify_frames length
    if details is not None:
        result.update(details())
    if error > tolerance:
        raise ExportError(f"{label} export differs from eager by {error:.3g} > "
                          f"tolerance={tolerance}; no file was written")
    return result


def refuse_foreign_files(output_dir: Path, paths: list[Path]) -> None:
    """Raise ``ExportError`` if a path exists that no earlier export into the folder wrote.

    An earlier export lists its files in ``export.json`` (its formats and streaming steps);
    anything else is the user's.
    """
    summary = output_dir / SUMMARY_FILE
    owned: set[str] = set()
    if summary.is_file():
        try:
            written = json.loads(summary.read_text(encoding="utf-8"))
            entries = [*written.get("formats", {}).values(),
                       *written.get("streaming", {}).get("files", {}).values()]
            owned = {str(Path(entry["path"]).resolve()) for entry in entries}
        except (ValueError, KeyError, AttributeError, TypeError):
            owned = set()
    for path in paths:
        if path.exists() and str(path.resolve()) not in owned:
            raise ExportError(
                f"{str(path)!r} exists and was not written by an export into {str(output_dir)!r}"
                f" (not listed in its {SUMMARY_FILE}); choose another name= or output_dir"
            )


@hydra.main(config_path="../configs", config_name="export", version_base="1.3")
def main(cfg: DictConfig) -> None:
    """Command-line entry point: a setup or verification problem exits with status 1."""
    log.debug("config:\n%s", OmegaConf.to_yaml(cfg))
    run_or_exit(run, cfg, log)


if __name__ == "__main__":
    check_run_dir_override(sys.argv)
    main()
