"""Model sections: whole generator, training step, BigVGAN, streaming, each against a reference
(torch's own layers; for BigVGAN NVIDIA's ``bigvgan`` package, when installed)."""

from __future__ import annotations

import contextlib
import copy
import io
import math
import re
import statistics
import time
import warnings
from typing import Any, Callable, Optional

import torch
from omegaconf import DictConfig, OmegaConf
from torch import nn
from tqdm import tqdm

from upsampler import BigVGANGenerator, ConvTranspose1d, HiFiGANGenerator, StreamingGenerator
from upsampler.layers import Activation1d
from upsampler.layers.weight_norm import apply_weight_norm
from upsampler.models import bigvgan_state_dict
from upsampler.recipe_support.benchmarks.onnx_streams import max_abs_diff, onnx_streams
from upsampler.recipe_support.benchmarks.op_profile import op_profile
from upsampler.recipe_support.benchmarks.timing import MS, interleaved_times, step

# the streaming section's pause before each timed call: onnxruntime's spinning threads and
# torch's OpenMP threads keep a core busy a while after a call, which would slow the next
SETTLE_SECONDS = 0.1



def with_native_upsamplers(generator: HiFiGANGenerator) -> nn.Module:
    """A copy of ``generator`` whose stage upsamplers (``ups[i]``) are
    ``torch.nn.ConvTranspose1d`` with the same state."""
    native = copy.deepcopy(generator)
    for i, up in enumerate(generator.ups):
        if not isinstance(up, ConvTranspose1d):
            raise TypeError(f"generator.ups[{i}] must be upsampler.ConvTranspose1d, got "
                            f"{type(up).__name__}")
        swap = nn.ConvTranspose1d(
            up.in_channels, up.out_channels, up.kernel_size, up.stride, up.padding,
            up.output_padding, up.groups, up.bias is not None, up.dilation,
            device=up.weight.device, dtype=up.weight.dtype,
        )
        swap.load_state_dict(up.state_dict())
        native.stages[i].upsample = swap
    return native


def bench_generator(cfg: DictConfig) -> list[dict[str, Any]]:
    """Whole generator (weight norm folded, eval), ours vs the same with torch's ``ups``."""
    gen_cfg = cfg.generator
    ours = HiFiGANGenerator.from_preset(gen_cfg.preset).to(cfg.device).eval()
    ours.remove_weight_norm()
    native = with_native_upsamplers(ours)
    rows = []
    for frames in tqdm(list(gen_cfg.mel_frames), desc="generator", disable=not cfg.progress):
        mel = torch.randn(gen_cfg.batch_size, ours.num_mels, frames, device=cfg.device)
        with torch.no_grad():
            diff = (ours(mel) - native(mel)).abs().max().item()
        timings = interleaved_times(step(ours, mel, "forward"), step(native, mel, "forward"),
                                    gen_cfg)
        rows.append({"preset": gen_cfg.preset, "mel_frames": frames, "batch": gen_cfg.batch_size,
                     **timings, "max_abs_diff": diff})
    return rows


def with_native_upsamplers_trainable(generator: HiFiGANGenerator) -> nn.Module:
    """A copy of a weight-normed ``generator`` whose ``ups[i]`` are weight-normed torch layers."""
    native = copy.deepcopy(generator)
    for i, up in enumerate(generator.ups):
        if not isinstance(up, ConvTranspose1d):
            raise TypeError(f"generator.ups[{i}] must be upsampler.ConvTranspose1d, got "
                            f"{type(up).__name__}")
        swap = apply_weight_norm(nn.ConvTranspose1d(
            up.in_channels, up.out_channels, up.kernel_size, up.stride, up.padding,
            up.output_padding, up.groups, up.bias is not None, up.dilation,
            device=up.weight.device, dtype=up.weight.dtype,
        ))
        swap.load_state_dict(up.state_dict())  # the same weight-norm keys g, v and the bias
        native.stages[i].upsample = swap
    return native


def bench_training(cfg: DictConfig) -> list[dict[str, Any]]:
    """One training step (forward + backward, weight norm kept), ours vs torch's ``ups``."""
    train_cfg = cfg.training
    ours = HiFiGANGenerator(**OmegaConf.to_container(train_cfg.model)).to(cfg.device).train()
    native = with_native_upsamplers_trainable(ours).train()
    rows = []
    for frames in tqdm(list(train_cfg.mel_frames), desc="training", disable=not cfg.progress):
        mel = torch.randn(train_cfg.batch_size, ours.num_mels, frames, device=cfg.device)
        with torch.no_grad():
            diff = (ours(mel) - native(mel)).abs().max().item()
        timings = interleaved_times(step(ours, mel, "forward_backward"),
                                    step(native, mel, "forward_backward"), train_cfg)
        rows.append({"hop": ours.hop_length, "mel_frames": frames, "batch": train_cfg.batch_size,
                     "parameters": sum(p.numel() for p in ours.parameters()), **timings,
                     "max_abs_diff": diff})
    return rows


NVIDIA_PIP = "pip install --no-deps bigvgan==2.4.1 && pip install huggingface_hub"
BIGVGAN_FIELDS = ("num_mels", "upsample_rates", "upsample_kernel_sizes",
                  "upsample_initial_channel", "resblock", "resblock_kernel_sizes",
                  "resblock_dilation_sizes", "activation", "snake_logscale",
                  "use_tanh_at_final", "use_bias_at_final")


def nvidia_bigvgan(generator: BigVGANGenerator) -> Optional[nn.Module]:
    """NVIDIA's ``bigvgan.bigvgan.BigVGAN`` (torch path, ``use_cuda_kernel=False``) built
    from ``generator``'s config, weight norm folded, holding ``generator``'s weights (read
    through ``bigvgan_state_dict``, strictly), in eval mode on its device; ``None`` when the
    ``bigvgan`` package (or a dependency of it) is not installed. ``generator`` must be
    folded (``remove_weight_norm()``), anti-aliased, with transposed upsamplers."""
    if not generator.anti_alias or generator.upsampler != "transposed":
        raise ValueError("generator must be anti-aliased with transposed upsamplers (BigVGAN's "
                         f"layout), got anti_alias={generator.anti_alias}, "
                         f"upsampler={generator.upsampler!r}")
    state = bigvgan_state_dict(generator)
    if any(key.endswith(".weight_g") for key in state):
        raise ValueError("fold generator's weight norm first (remove_weight_norm())")
    try:
        from bigvgan.bigvgan import BigVGAN
        from bigvgan.env import AttrDict
    except ImportError:
        return None
    config = AttrDict({field: getattr(generator, field) for field in BIGVGAN_FIELDS})
    # upstream builds with the deprecated weight_norm and prints as it folds
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore", FutureWarning)
        reference = BigVGAN(config, use_cuda_kernel=False)
        reference.remove_weight_norm()
    reference.load_state_dict(state, strict=True)
    device = next(generator.parameters()).device
    return reference.to(device).eval()


def qualified_name(obj: object) -> str:
    """``module.Class`` of ``obj``'s type (which implementation a row timed)."""
    return f"{type(obj).__module__}.{type(obj).__qualname__}"


def _is_activation1d(module: nn.Module) -> bool:
    # ours (upsampler.layers.Activation1d) and NVIDIA's (alias_free_activation.torch)
    return isinstance(module, Activation1d) or type(module).__name__ == "Activation1d"


BREAKDOWN = {  # time categories of a BigVGAN forward, by the module that spends it;
    # names of ours (stages.{i}.upsample, stages.{i}.mrf.*) and NVIDIA's (ups.{i}.0, resblocks.*)
    "snake": lambda m, name: name.endswith(".act"),
    "anti_alias_filters": lambda m, name: _is_activation1d(m),
    "residual_convs": lambda m, name: isinstance(m, nn.Conv1d) and (
        ".mrf." in name or name.startswith("resblocks.")),
    "stage_upsamplers": lambda m, name: re.fullmatch(
        r"stages\.\d+\.upsample|ups\.\d+\.0", name) is not None,
    "conv_pre_post": lambda m, name: name in ("conv_pre", "conv_post"),
}


def time_breakdown(model: nn.Module, mel: torch.Tensor) -> dict[str, float]:
    """Milliseconds per category (``BREAKDOWN``) of one forward, by forward hooks; the
    filters' time excludes the Snake inside them; ``other`` is adds, means and the rest."""
    spent = {name: 0.0 for name in BREAKDOWN}
    handles, starts = [], {}
    for name, module in model.named_modules():
        for category, test in BREAKDOWN.items():
            if test(module, name):
                def pre(mod, args, key=(category, name)):
                    starts[key] = time.perf_counter()

                def post(mod, args, out, key=(category, name)):
                    spent[key[0]] += (time.perf_counter() - starts[key]) * MS
                handles += [module.register_forward_pre_hook(pre),
                            module.register_forward_hook(post)]
                break
    try:
        start = time.perf_counter()
        with torch.no_grad():
            model(mel)
        total = (time.perf_counter() - start) * MS
    finally:
        for handle in handles:
            handle.remove()
    spent["anti_alias_filters"] -= spent["snake"]
    return {**spent, "other": total - sum(spent.values()), "total": total}


def bench_bigvgan(cfg: DictConfig) -> list[dict[str, Any]]:
    """BigVGAN (weight norm folded, eval), ours (polyphase) vs NVIDIA's ``BigVGAN`` (torch
    path) on the same weights; no rows, and one line saying so, without the package."""
    big = cfg.bigvgan
    ours = BigVGANGenerator.from_preset(big.preset).to(cfg.device).eval()
    ours.remove_weight_norm()
    reference = nvidia_bigvgan(ours)
    if reference is None:
        print(f"bigvgan: skipped, NVIDIA's bigvgan package is not installed ({NVIDIA_PIP})")
        return []
    rows = []
    for seconds in big.audio_seconds:
        frames = math.ceil(seconds * big.sample_rate / ours.hop_length)
        mel = torch.randn(big.batch_size, ours.num_mels, frames, device=cfg.device)
        with torch.no_grad():
            diff = (ours(mel) - reference(mel)).abs().max().item()
        timings = interleaved_times(step(ours, mel, "forward"), step(reference, mel, "forward"),
                                    big)
        audio = big.batch_size * frames * ours.hop_length / big.sample_rate
        row = {"preset": big.preset, "reference": qualified_name(reference), "mel_frames": frames,
               "audio_seconds": audio, **timings,
               "ours_x_real_time": audio / (timings["ours_ms"] / MS),
               "reference_x_real_time": audio / (timings["native_ms"] / MS),
               "max_abs_diff": diff}
        breakdowns: dict[str, list[dict[str, float]]] = {"ours": [], "reference": []}
        for _ in range(big.breakdown_reps):  # interleaved, medians: the machine may be busy
            for label, model in (("ours", ours), ("reference", reference)):
                breakdowns[label].append(time_breakdown(model, mel))
        for label, runs in breakdowns.items():
            row.update({f"{label}_{k}_ms": statistics.median(run[k] for run in runs)
                        for k in runs[0]})
        rows.append(row)
    return rows


def bench_streaming(cfg: DictConfig) -> list[dict[str, Any]]:
    """Streaming cost per second of audio, chunk sizes and offline interleaved per preset.

    Weight norm folded, ``torch.inference_mode()``; every stream is checked against the
    offline output first (``max_abs_diff``). With ``streaming.profile`` each row also gets
    one profiled call's breakdown (:func:`op_profile`), ``products_vs_offline`` (its
    matrix products over the profiled offline call's wall time) and ``op_calls_per_step``.
    """
    stream_cfg = cfg.streaming
    rows = []
    for preset in stream_cfg.presets:
        widths = {} if stream_cfg.width is None else {"upsample_initial_channel": stream_cfg.width}
        generator = HiFiGANGenerator.from_preset(preset, **widths).to(cfg.device).eval()
        generator.remove_weight_norm()
        frames = stream_cfg.mel_frames
        mel = torch.randn(1, generator.num_mels, frames, device=cfg.device)
        audio_seconds = frames * generator.hop_length / stream_cfg.sample_rate

        def streamed(chunk: int) -> torch.Tensor:
            streamer = StreamingGenerator(generator, stream_cfg.sample_rate)
            outs = [streamer.step(mel[:, :, i : i + chunk]) for i in range(0, frames, chunk)]
            return torch.cat(outs + [streamer.flush()], dim=-1)

        runs: dict[str, Callable[[], object]] = {"offline": lambda: generator(mel)}
        if "eager" in stream_cfg.runtimes:
            runs.update({f"chunk_{c}": (lambda c=c: streamed(c)) for c in stream_cfg.chunk_frames})
        exported = contextlib.nullcontext({})
        if "onnx" in stream_cfg.runtimes:
            exported = onnx_streams(generator, mel, list(stream_cfg.chunk_frames),
                                    cfg.num_threads, stream_cfg.sample_rate)
        with exported as steps, torch.inference_mode():
            runs.update(steps)
            times: dict[str, list[float]] = {name: [] for name in runs}
            expected = generator(mel)
            diffs = {name: max_abs_diff(run(), expected) for name, run in runs.items()}
            for _ in range(stream_cfg.reps):
                for name, run in runs.items():
                    time.sleep(SETTLE_SECONDS)  # no call inherits another's spinning threads
                    start = time.perf_counter()
                    run()
                    times[name].append(time.perf_counter() - start)
            profiles = {name: op_profile(run) for name, run in runs.items()
                        if not name.startswith("onnx")} if stream_cfg.profile else {}
        offline = statistics.median(times["offline"])
        # calls per utterance: offline one, a stream its chunks and the flush
        steps = {"offline": 1}
        steps.update({f"chunk_{c}": math.ceil(frames / c) + 1 for c in stream_cfg.chunk_frames})
        steps.update({f"onnx_chunk_{c}": steps[f"chunk_{c}"] for c in stream_cfg.chunk_frames})
        for name, values in times.items():
            seconds = statistics.median(values)
            row = {
                "preset": preset, "mode": name, "mel_frames": frames, "reps": stream_cfg.reps,
                "seconds_per_audio_second": seconds / audio_seconds,
                "ratio_to_offline": seconds / offline, "max_abs_diff": diffs[name],
            }
            if name in profiles:
                row.update(profiles[name])
                row["products_vs_offline"] = (profiles[name]["products_ms"]
                                              / profiles["offline"]["profiled_ms"])
                row["op_calls_per_step"] = profiles[name]["op_calls"] / steps[name]
            rows.append(row)
    return rows
