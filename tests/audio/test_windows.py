"""Long inputs in windows: output equal to one offline pass, work per call bounded."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn

from upsampler import HiFiGANGenerator
from upsampler.audio import MelSpectrogram
from upsampler.audio.inference import (
    context_frames,
    log_mel_in_windows,
    vocode_in_windows,
)

KINDS = ("transposed", "nearest_conv", "linear_conv", "subpixel", "subpixel_icnr")
NUM_MELS, FRAMES = 8, 23


def small_generator(kind: str, preset: str = "v1") -> HiFiGANGenerator:
    torch.manual_seed(0)
    generator = HiFiGANGenerator.from_preset(
        preset, num_mels=NUM_MELS, upsample_initial_channel=16, upsampler=kind)
    generator.remove_weight_norm()
    return generator.eval()


def windowed(generator: nn.Module, mel: Tensor, window: int) -> Tensor:
    pieces: list[Tensor] = []
    total = vocode_in_windows(generator, mel, window, pieces.append)
    out = torch.cat(pieces)
    assert total == out.shape[-1] == mel.shape[-1] * generator.hop_length
    return out


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("window", [1, 5])
def test_windows_equal_offline_for_every_upsampler(kind: str, window: int) -> None:
    generator = small_generator(kind)
    mel = torch.randn(NUM_MELS, FRAMES, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        offline = generator(mel[None])[0, 0]
    torch.testing.assert_close(windowed(generator, mel, window), offline)


def test_windows_equal_offline_for_v3_layout() -> None:
    generator = small_generator("transposed", "v3")
    mel = torch.randn(NUM_MELS, FRAMES, generator=torch.Generator().manual_seed(2))
    with torch.inference_mode():
        offline = generator(mel[None])[0, 0]
    torch.testing.assert_close(windowed(generator, mel, 5), offline)


def test_every_call_sees_at_most_a_window_plus_its_context() -> None:
    generator = small_generator("transposed")
    before, after = context_frames(generator)
    seen: list[int] = []
    generator.register_forward_pre_hook(lambda module, args: seen.append(args[0].shape[-1]))
    window, frames = 4, 60
    windowed(generator, torch.randn(NUM_MELS, frames), window)
    assert len(seen) == frames // window
    assert max(seen) <= window + before + after < frames


def test_context_is_at_least_the_measured_reach() -> None:
    # an impulse at frame t moves output samples only within the stated context
    generator = small_generator("linear_conv")
    before, after = context_frames(generator)
    hop, frames, t = generator.hop_length, 60, 30
    base = torch.zeros(NUM_MELS, frames)
    bumped = base.clone()
    bumped[:, t] = 1.0
    with torch.inference_mode():
        diff = (generator(bumped[None]) - generator(base[None]))[0, 0].abs()
    moved = torch.nonzero(diff > 0).flatten()
    assert moved.min() >= (t - after) * hop and moved.max() < (t + 1 + before) * hop


class NoStreamingRule(nn.Module):
    """A generator-shaped module whose layer has no streaming rule: no known receptive field."""

    hop_length = 4

    def forward(self, mel: Tensor) -> Tensor:
        return mel.repeat_interleave(self.hop_length, dim=-1)


def test_context_of_an_unknown_generator_is_a_type_error() -> None:
    # the message names the module; it used to fall through to an AttributeError
    with pytest.raises(TypeError, match="NoStreamingRule has no streaming rule"):
        context_frames(NoStreamingRule())


@pytest.mark.parametrize("length", [200 * 37, 200 * 37 + 113])
def test_log_mel_in_windows_equals_one_pass(length: int) -> None:
    transform = MelSpectrogram(16000, 800, 200, 800, NUM_MELS, 0, 8000)
    wav = 0.1 * torch.randn(length, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(log_mel_in_windows(transform, wav, 5), transform(wav))
