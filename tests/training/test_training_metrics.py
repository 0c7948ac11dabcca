"""Validation metrics against hand facts: perfect against itself, low against noise."""

from __future__ import annotations

import math

import librosa
import numpy as np
import pytest
import torch

from upsampler.audio import BUNDLED_SPEECH, MelSpectrogram, load_audio
from upsampler.training.metrics import mel_l1, stoi, validation_metrics, wideband_pesq

RATE = 16000  # the bundled ARCTIC recording
PESQ_MAX = 4.644  # P.862.2's mapping of a perfect raw score


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    return load_audio(BUNDLED_SPEECH, RATE).numpy()


def noise_like(signal: np.ndarray, snr_db: float | None = None, seed: int = 0) -> np.ndarray:
    """White noise with ``signal``'s power, or ``signal`` plus noise at ``snr_db``."""
    rng = np.random.default_rng(seed)
    noise = rng.standard_normal(signal.shape).astype(np.float32) * signal.std()
    return noise if snr_db is None else signal + noise * 10 ** (-snr_db / 20)


def test_identical_speech_scores_perfectly(speech: np.ndarray) -> None:
    pytest.importorskip("pystoi")
    pytest.importorskip("pesq")
    assert stoi(speech, speech.copy(), RATE) == pytest.approx(1.0, abs=1e-6)
    assert 4.5 <= wideband_pesq(speech, speech.copy(), RATE) <= PESQ_MAX


def test_speech_against_noise_scores_low(speech: np.ndarray) -> None:
    pytest.importorskip("pystoi")
    pytest.importorskip("pesq")
    noise = noise_like(speech)
    # STOI clips the degraded envelope to the reference's, so even unrelated noise keeps
    # about 0.4 (identical speech: 1); PESQ's floor is about 1.04
    assert stoi(speech, noise, RATE) < 0.5
    assert wideband_pesq(speech, noise, RATE) < 1.1


def test_more_noise_scores_lower(speech: np.ndarray) -> None:
    pytest.importorskip("pystoi")
    pytest.importorskip("pesq")
    clean_ish, noisy = noise_like(speech, snr_db=20.0), noise_like(speech, snr_db=0.0)
    assert stoi(speech, clean_ish, RATE) > stoi(speech, noisy, RATE) > stoi(speech,
                                                                          noise_like(speech), RATE)
    assert wideband_pesq(speech, clean_ish, RATE) > wideband_pesq(speech, noisy, RATE)


def test_pesq_resamples_other_rates(speech: np.ndarray) -> None:
    pytest.importorskip("pesq")
    faster = librosa.resample(speech, orig_sr=RATE, target_sr=22050)
    assert 4.5 <= wideband_pesq(faster, faster.copy(), 22050) <= PESQ_MAX


def test_metrics_take_tensors_with_a_channel_axis(speech: np.ndarray) -> None:
    pytest.importorskip("pystoi")
    wav = torch.from_numpy(speech).unsqueeze(0)  # (L,) -> (1, L), a dataset item's layout
    assert stoi(wav, wav.clone(), RATE) == pytest.approx(1.0, abs=1e-6)


def test_mel_l1_of_a_gain_is_its_log() -> None:
    """Twice the amplitude adds log(2) to every mel bin above the log floor."""
    mel = MelSpectrogram(sample_rate=RATE, n_fft=1024, hop_length=200, win_length=800)
    loud = torch.randn(8000, generator=torch.Generator().manual_seed(0)) * 0.1
    assert mel_l1(loud, loud.clone(), RATE, mel) == 0.0
    assert mel_l1(loud, 2 * loud, RATE, mel) == pytest.approx(math.log(2), abs=1e-3)


def test_validation_metrics_keys(speech: np.ndarray) -> None:
    pytest.importorskip("pystoi")
    pytest.importorskip("pesq")
    mel = MelSpectrogram(sample_rate=RATE, n_fft=1024, hop_length=200, win_length=800)
    scores = validation_metrics(speech, noise_like(speech, snr_db=10.0), RATE, mel)
    assert sorted(scores) == ["mel_l1", "pesq_wb", "stoi"]
    assert all(isinstance(value, float) and math.isfinite(value) for value in scores.values())


@pytest.mark.parametrize("reference, degraded, error, match", [
    (np.zeros(100), np.zeros(99), ValueError, "same length, got 100 and 99"),
    (np.full(100, np.nan), np.zeros(100), ValueError, "reference contains NaN"),
    (np.zeros(100), np.zeros((2, 100)), ValueError, r"degraded must be a non-empty \(L,\)"),
    (np.zeros(100, dtype=np.int16), np.zeros(100), TypeError, "floating-point"),
    ([0.0] * 100, np.zeros(100), TypeError, "torch.Tensor or numpy array, got list"),
])
def test_bad_signals(reference: object, degraded: object, error: type, match: str) -> None:
    pytest.importorskip("pystoi")
    with pytest.raises(error, match=match):
        stoi(reference, degraded, RATE)


def test_pesq_of_silence_is_an_error() -> None:
    pytest.importorskip("pesq")
    with pytest.raises(ValueError, match="silent"):
        wideband_pesq(np.zeros(RATE), np.zeros(RATE), RATE)


def test_mel_l1_rate_must_match_the_front_end() -> None:
    mel = MelSpectrogram(sample_rate=22050)
    with pytest.raises(ValueError, match="sample_rate=16000 does not match"):
        mel_l1(np.zeros(4000), np.zeros(4000), RATE, mel)
