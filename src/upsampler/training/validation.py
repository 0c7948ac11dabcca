"""Copy-synthesis metrics of a generator on whole held-out utterances.

Per utterance the generator vocodes the reference's mel; the generated waveform is
compared with the reference: mel L1 (on the loss mel), the multi-resolution STFT distance
(spectral convergence + log-magnitude L1), STOI and wideband PESQ. STOI and PESQ come
from ``upsampler.training.metrics`` (``pystoi`` / ``pesq``, the ``metrics`` extra); a metric
whose package is missing is reported as None, with one warning naming the package, and an
utterance a metric cannot score (PESQ finding no speech) is left out of that metric's mean.
"""

from __future__ import annotations

import logging
import statistics
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from upsampler.training.losses import MultiResolutionSTFTLoss, mel_l1_loss

log = logging.getLogger(__name__)
Metric = Callable[[Tensor, Tensor, int], float]


@dataclass
class ValidationResult:
    """Mean metrics over the utterances and the first few (name, reference, generated)."""

    metrics: dict[str, float | None]
    examples: list[tuple[str, Tensor, Tensor]] = field(default_factory=list)


def intelligibility_metrics() -> dict[str, Metric | None]:
    """``{"stoi": fn, "pesq": fn}``; None for a metric whose package cannot be imported."""
    found: dict[str, Metric | None] = {"stoi": None, "pesq": None}
    try:
        from upsampler.training import metrics
    except ImportError as error:
        log.warning("STOI / PESQ not computed: %s", error)
        return found
    found["stoi"], found["pesq"] = metrics.stoi, metrics.wideband_pesq
    return found


@torch.no_grad()
def validate(
    generator: nn.Module, utterances: Iterable[tuple[str, Tensor, Tensor]], loss_mel: nn.Module,
    sample_rate: int, device: torch.device, keep_examples: int = 2,
    metrics: dict[str, Metric | None] | None = None,
) -> ValidationResult:
    """Vocode each ``(name, mel (M, T), wav (1, T * hop))``; average the metrics.

    The generator is put in eval mode and back in train mode afterwards.
    """
    metrics = dict(intelligibility_metrics() if metrics is None else metrics)
    stft_loss = MultiResolutionSTFTLoss().to(device)
    values: dict[str, list[float]] = {"mel_l1": [], "stft": [], "stoi": [], "pesq": []}
    examples: list[tuple[str, Tensor, Tensor]] = []
    was_training = generator.training
    generator.eval()
    try:
        for name, mel, wav in utterances:
            mel, wav = mel.to(device), wav.to(device)
            fake = generator(mel.unsqueeze(0))[0]  # (M, T) -> (1, M, T) -> (1, T * hop)
            values["mel_l1"].append(float(mel_l1_loss(loss_mel(wav), loss_mel(fake))))
            convergence, magnitude = stft_loss(fake, wav)
            values["stft"].append(float(convergence + magnitude))
            reference, generated = wav[0].cpu(), fake[0].cpu()
            for key in ("stoi", "pesq"):
                metric = metrics.get(key)
                if metric is None:
                    continue
                try:
                    values[key].append(float(metric(reference, generated, sample_rate)))
                except ImportError as error:  # the package is missing: stop asking
                    log.warning("%s not computed: %s", key, error)
                    metrics[key] = None
                except ValueError as error:  # e.g. PESQ finds no speech in this pair
                    log.warning("%s of %s not computed: %s", key, name, error)
            if len(examples) < keep_examples:
                examples.append((name, reference, generated))
    finally:
        generator.train(was_training)
    means = {key: (statistics.fmean(found) if found else None) for key, found in values.items()}
    means["utterances"] = len(values["mel_l1"])
    return ValidationResult(means, examples)


__all__ = ["ValidationResult", "intelligibility_metrics", "validate"]
