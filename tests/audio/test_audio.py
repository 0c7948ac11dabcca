"""Mel front end against jik876's meldataset recipe (as BigVGAN's ``meldataset.mel_spectrogram``,
via tests/upstream.py); exact-length copy synthesis; file I/O."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

import upstream
from upsampler import HiFiGANGenerator, audio
from upsampler.audio import (
    BUNDLED_SPEECH, MelSpectrogram, copy_synthesis, load_audio, mel_spectrogram,
)

SAMPLE_RATE = 22050
ISSUE_33_LENGTH = 71334  # jik876/hifi-gan issue 33: came back as 71168 samples
TORCHAUDIO_TOLERANCE = 1e-4  # two filterbank implementations, float32: rounding only


def speech_like(length: int, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    t = torch.arange(length) / SAMPLE_RATE
    tone = 0.3 * torch.sin(2 * torch.pi * 220.0 * t) * torch.sin(2 * torch.pi * 3.0 * t)
    return tone + 0.05 * torch.randn(length, generator=generator)


def test_mel_matches_original_recipe() -> None:
    wav = torch.stack([speech_like(22050, seed) for seed in range(2)])
    reference = upstream.bigvgan_module("meldataset").mel_spectrogram
    expected = reference(wav, 1024, 80, SAMPLE_RATE, 256, 1024, 0, 8000)
    mel = mel_spectrogram(wav)
    assert mel.shape == (2, 80, 22050 // 256)
    torch.testing.assert_close(mel, expected)
    torch.testing.assert_close(MelSpectrogram()(wav), expected)


def test_mel_batch_and_single_agree() -> None:
    wav = torch.stack([speech_like(5000, seed) for seed in range(3)])
    batched = mel_spectrogram(wav)
    torch.testing.assert_close(mel_spectrogram(wav[2]), batched[2])
    assert mel_spectrogram(wav[2]).shape == (80, 5000 // 256)


def test_mel_other_settings_match_original() -> None:
    wav = speech_like(16000).unsqueeze(0)
    kwargs = dict(sample_rate=16000, n_fft=800, hop_length=200, win_length=800, num_mels=64,
                  fmin=50.0, fmax=7600.0)
    reference = upstream.bigvgan_module("meldataset").mel_spectrogram
    expected = reference(wav, 800, 64, 16000, 200, 800, 50.0, 7600.0)
    torch.testing.assert_close(mel_spectrogram(wav, **kwargs), expected)
    transform = MelSpectrogram(**kwargs)
    assert (transform.hop_length, transform.num_mels, transform.fmax) == (200, 64, 7600.0)
    assert transform.state_dict() == {}


def test_transforms_do_not_share_the_cached_filterbank() -> None:
    first = MelSpectrogram()
    expected = first.mel_basis.clone()
    first.mel_basis.zero_()
    torch.testing.assert_close(MelSpectrogram().mel_basis, expected)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_mel_runs_on_the_input_device() -> None:
    wav = speech_like(4096).cuda()
    mel = mel_spectrogram(wav)
    assert mel.device == wav.device
    # cuFFT and the CPU FFT round float32 differently, and the log magnifies the difference
    # in quiet bins near the 1e-5 clamp: 1e-4 as for the torchaudio filterbank comparison
    torch.testing.assert_close(mel.cpu(), mel_spectrogram(wav.cpu()), atol=1e-4, rtol=1e-4)


def test_torchaudio_backend_agrees_with_librosa() -> None:
    pytest.importorskip("torchaudio")
    wav = speech_like(8192)
    expected = MelSpectrogram(backend="librosa")(wav)
    torch.testing.assert_close(
        MelSpectrogram(backend="torchaudio")(wav), expected,
        atol=TORCHAUDIO_TOLERANCE, rtol=TORCHAUDIO_TOLERANCE,
    )


def test_librosa_backend_never_imports_torchaudio(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "torchaudio", None)  # any import of it now fails
    monkeypatch.setitem(sys.modules, "torchaudio.functional", None)
    assert MelSpectrogram()(speech_like(2048)).shape == (80, 8)
    with pytest.raises(ImportError, match=r'pip install "upsampler\[torchaudio\]"'):
        MelSpectrogram(backend="torchaudio")


@pytest.mark.parametrize(
    ("wav", "error", "match"),
    [
        (torch.zeros(384), ValueError, "at least 385 samples"),  # reflect pad 384 < L
        (torch.zeros(1, 1, 4096), ValueError, r"shape \(L,\) or \(B, L\)"),
        (torch.full((4096,), float("nan")), ValueError, "NaN or Inf"),
        (torch.zeros(4096, dtype=torch.int16), TypeError, "floating-point"),
    ],
)
def test_bad_wav_is_rejected(wav: torch.Tensor, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        mel_spectrogram(wav)


def test_bad_mel_settings_are_rejected() -> None:
    with pytest.raises(ValueError, match="backend must be one of"):
        MelSpectrogram(backend="kaldi")
    with pytest.raises(ValueError, match="fmax <= sample_rate / 2 = 8000.0"):
        MelSpectrogram(sample_rate=16000, fmax=9000.0)
    with pytest.raises(ValueError, match="win_length must be <= n_fft=1024"):
        MelSpectrogram(win_length=2048)


@pytest.fixture(scope="module")
def small_generator() -> HiFiGANGenerator:
    torch.manual_seed(0)
    return HiFiGANGenerator(upsample_initial_channel=16, resblock="2", resblock_kernel_sizes=(3,),
                            resblock_dilation_sizes=((1,),)).eval()


@pytest.mark.parametrize("length", [ISSUE_33_LENGTH, 256 * 40, 1000])
def test_copy_synthesis_returns_the_input_length(
    small_generator: HiFiGANGenerator, length: int
) -> None:
    wav = speech_like(length)
    out = copy_synthesis(small_generator, MelSpectrogram(), wav)
    assert out.shape == (length,)
    batched = copy_synthesis(small_generator, MelSpectrogram(), torch.stack([wav, wav]))
    assert batched.shape == (2, length)
    torch.testing.assert_close(batched[1], out)


def test_copy_synthesis_rejects_mismatched_hop(small_generator: HiFiGANGenerator) -> None:
    with pytest.raises(ValueError, match="hop_length=200 must equal generator.hop_length=256"):
        copy_synthesis(small_generator, MelSpectrogram(hop_length=200), speech_like(4096))


def test_load_audio_resamples_and_mixes_down(tmp_path: Path) -> None:
    left, right = np.linspace(-0.5, 0.5, 16000), np.full(16000, 0.25)
    sf.write(tmp_path / "stereo.wav", np.stack([left, right], axis=1), 16000, subtype="FLOAT")
    same_rate = load_audio(tmp_path / "stereo.wav", 16000)
    assert same_rate.dtype == torch.float32 and same_rate.shape == (16000,)
    torch.testing.assert_close(same_rate, torch.from_numpy((left + right) / 2).float())
    resampled = load_audio(tmp_path / "stereo.wav", 22050)
    assert resampled.shape == (22050,)  # one second at the new rate


def test_load_audio_errors_name_the_path(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="missing.wav' does not exist"):
        load_audio(tmp_path / "missing.wav", 16000)
    (tmp_path / "corrupt.wav").write_bytes(b"RIFF\x00\x00garbage")
    with pytest.raises(ValueError, match="corrupt.wav' is not readable audio"):
        load_audio(tmp_path / "corrupt.wav", 16000)
    sf.write(tmp_path / "empty.wav", np.zeros((0, 1)), 16000)
    with pytest.raises(ValueError, match="empty.wav' holds no samples"):
        load_audio(tmp_path / "empty.wav", 16000)


def test_save_audio_round_trip_leaves_no_temp_file(tmp_path: Path) -> None:
    wav = speech_like(4000) * 0.5
    audio.save_audio(tmp_path / "out.wav", wav, SAMPLE_RATE)
    assert [p.name for p in tmp_path.iterdir()] == ["out.wav"]
    data, rate = sf.read(tmp_path / "out.wav", dtype="float32")
    assert rate == SAMPLE_RATE
    # 16-bit PCM: one quantisation step is 2 ** -15
    torch.testing.assert_close(torch.from_numpy(data), wav, atol=2.0**-15, rtol=0.0)
    with pytest.raises(ValueError, match="NaN or Inf"):
        audio.save_audio(tmp_path / "bad.wav", torch.full((10,), float("inf")), SAMPLE_RATE)


def test_bundled_speech_loads() -> None:
    wav = load_audio(BUNDLED_SPEECH, 16000)
    assert wav.shape == (4 * 16000,)  # a 4.000 s clip at 16 kHz
    assert 0.01 < wav.abs().max() <= 1.0
