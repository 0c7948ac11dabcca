"""Training data: wav discovery, HiFi-GAN file lists, random segments and validation utterances."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from torch.utils.data import DataLoader

from upsampler.audio import MelSpectrogram
from upsampler.training.data import (
    SegmentDataset,
    ShortFileWarning,
    UtteranceDataset,
    find_wavs,
    read_file_list,
)

RATE, HOP, NUM_MELS = 16000, 200, 80  # configs/audio/16k_hop200.yaml
SEGMENT = 5 * HOP


@pytest.fixture(scope="module")
def mel() -> MelSpectrogram:
    return MelSpectrogram(sample_rate=RATE, n_fft=1024, hop_length=HOP, win_length=800,
                          num_mels=NUM_MELS, fmax=8000.0)


def ramp(length: int, scale: float = 0.5) -> np.ndarray:
    """Strictly increasing samples: a sample's value tells where it came from."""
    return (np.arange(length) / length * scale).astype(np.float32)


def write(path: Path, samples: np.ndarray, rate: int = RATE) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, samples, rate, subtype="FLOAT")  # float wav: no int16 rounding
    return path


def test_find_wavs_recursive_sorted_skips_hidden(tmp_path: Path) -> None:
    for name in ("b.wav", "a.WAV", "sub/c.wav", ".hidden/d.wav", "sub/.e.wav.tmp.wav"):
        write(tmp_path / name, ramp(300))
    (tmp_path / "notes.txt").write_text("not audio")
    assert find_wavs(tmp_path) == [tmp_path / "a.WAV", tmp_path / "b.wav", tmp_path / "sub/c.wav"]


def test_find_wavs_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="nowhere"):
        find_wavs(tmp_path / "nowhere")


def test_find_wavs_folder_without_wavs(tmp_path: Path) -> None:
    (tmp_path / "a.flac.txt").write_text("x")
    with pytest.raises(ValueError, match="holds no .wav"):
        find_wavs(tmp_path)


def test_read_file_list_hifigan_and_ljspeech_lines(tmp_path: Path) -> None:
    for name in ("a", "digits/1", "LJ001-0001"):
        write(tmp_path / "wavs" / f"{name}.wav", ramp(300))
    listing = tmp_path / "training.txt"
    listing.write_text("a|Hello.\n\ndigits/1|one\nLJ001-0001|Printing, 1|Printing, one\n")
    assert read_file_list(listing, tmp_path / "wavs") == [
        tmp_path / "wavs/a.wav", tmp_path / "wavs/digits/1.wav", tmp_path / "wavs/LJ001-0001.wav"]


@pytest.mark.parametrize("text, match", [
    ("", "names no file"),
    ("a|x\na|y\n", "'a' more than once"),
    ("a|x\nghost|boo\n", "1 of 2 files are missing.*ghost.wav"),
])
def test_read_file_list_bad_lists(tmp_path: Path, text: str, match: str) -> None:
    write(tmp_path / "a.wav", ramp(300))
    (tmp_path / "list.txt").write_text(text)
    with pytest.raises(ValueError, match=match):
        read_file_list(tmp_path / "list.txt", tmp_path)


def test_read_file_list_missing_list(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="validation.txt"):
        read_file_list(tmp_path / "validation.txt", tmp_path)


def test_segments_shapes_and_come_from_the_file(tmp_path: Path, mel: MelSpectrogram) -> None:
    lengths = [3000, 4321, 12000]
    sources = [ramp(n) for n in lengths]
    files = [write(tmp_path / f"{i}.wav", s) for i, s in enumerate(sources)]
    data = SegmentDataset(files, mel, SEGMENT, seed=3)
    assert len(data) == 3
    for epoch in range(3):
        data.set_epoch(epoch)
        for index, source in enumerate(sources):
            frames, wav = data[index]
            assert frames.shape == (NUM_MELS, SEGMENT // HOP) and wav.shape == (1, SEGMENT)
            assert frames.dtype == wav.dtype == torch.float32
            start = int(np.searchsorted(source, wav[0, 0].item()))
            assert 0 <= start <= len(source) - SEGMENT
            torch.testing.assert_close(wav[0], torch.from_numpy(source[start:start + SEGMENT]))
            torch.testing.assert_close(frames, mel(wav[0]))


def test_segments_depend_on_seed_epoch_index_only(tmp_path: Path, mel: MelSpectrogram) -> None:
    files = [write(tmp_path / f"{i}.wav", ramp(20000 + 7 * i)) for i in range(4)]
    first = SegmentDataset(files, mel, SEGMENT, seed=5)
    second = SegmentDataset(files, mel, SEGMENT, seed=5)
    first.set_epoch(2)
    forward = [first[i][1] for i in range(4)]
    second.set_epoch(7)
    second[1], second[3]  # other draws first must not shift the epoch-2 segments
    second.set_epoch(2)
    backward = [second[i][1] for i in reversed(range(4))][::-1]
    for a, b in zip(forward, backward):
        torch.testing.assert_close(a, b)
    first.set_epoch(3)
    assert any(not torch.equal(a, first[i][1]) for i, a in enumerate(forward))
    other_seed = SegmentDataset(files, mel, SEGMENT, seed=6)
    other_seed.set_epoch(2)
    assert any(not torch.equal(a, other_seed[i][1]) for i, a in enumerate(forward))


def test_segments_same_through_worker_processes(tmp_path: Path, mel: MelSpectrogram) -> None:
    files = [write(tmp_path / f"{i}.wav", ramp(9000 + i)) for i in range(4)]
    data = SegmentDataset(files, mel, SEGMENT, seed=1)
    data.set_epoch(4)
    serial = next(iter(DataLoader(data, batch_size=4)))
    parallel = next(iter(DataLoader(data, batch_size=4, num_workers=2)))
    assert serial[0].shape == (4, NUM_MELS, SEGMENT // HOP) and serial[1].shape == (4, 1, SEGMENT)
    torch.testing.assert_close(parallel[1], serial[1])


def test_short_files_are_padded_with_named_warning(tmp_path: Path, mel: MelSpectrogram) -> None:
    long = write(tmp_path / "long.wav", ramp(3 * SEGMENT))
    short = write(tmp_path / "short.wav", ramp(SEGMENT - 150))
    with pytest.warns(ShortFileWarning, match=r"1 of 2 files .*zero-padded.*short\.wav"):
        data = SegmentDataset([long, short], mel, SEGMENT)
    assert len(data) == 2
    _, wav = data[1]
    torch.testing.assert_close(wav[0, :SEGMENT - 150], torch.from_numpy(ramp(SEGMENT - 150)))
    assert torch.count_nonzero(wav[0, SEGMENT - 150:]) == 0


def test_short_files_are_skipped_with_named_warning(tmp_path: Path, mel: MelSpectrogram) -> None:
    long = write(tmp_path / "long.wav", ramp(3 * SEGMENT))
    short = write(tmp_path / "short.wav", ramp(SEGMENT - 1))
    with pytest.warns(ShortFileWarning, match=r"1 of 2 files .*skipped.*short\.wav"):
        data = SegmentDataset([short, long], mel, SEGMENT, short_files="skip")
    assert data.files == [long] and len(data) == 1


def test_only_short_files_skipped_is_an_error(tmp_path: Path, mel: MelSpectrogram) -> None:
    short = write(tmp_path / "short.wav", ramp(SEGMENT - 1))
    with pytest.warns(ShortFileWarning), pytest.raises(ValueError, match="every file is shorter"):
        SegmentDataset([short], mel, SEGMENT, short_files="skip")


def test_corrupt_file_is_named(tmp_path: Path, mel: MelSpectrogram) -> None:
    good = write(tmp_path / "good.wav", ramp(3000))
    bad = tmp_path / "broken.wav"
    bad.write_bytes(b"RIFF\x00\x00not a wav at all")
    with pytest.raises(ValueError, match="broken.wav"):
        SegmentDataset([good, bad], mel, SEGMENT)


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(segment_length=SEGMENT + 1), ValueError,
     f"multiple of the mel hop_length={HOP}, got {SEGMENT + 1}"),
    (dict(segment_length=0), ValueError, "segment_length must be >= 1, got 0"),
    (dict(segment_length=2 * HOP), ValueError, "segment_length must be at least 413"),
    (dict(segment_length=SEGMENT, short_files="crop"), ValueError, "short_files must be one of"),
    (dict(segment_length=SEGMENT, seed=-1), ValueError, "seed must be >= 0"),
    (dict(segment_length=float(SEGMENT)), TypeError, "segment_length must be an int"),
])
def test_segment_dataset_bad_arguments(tmp_path: Path, mel: MelSpectrogram, kwargs: dict,
                                       error: type, match: str) -> None:
    wav = write(tmp_path / "a.wav", ramp(3000))
    with pytest.raises(error, match=match):
        SegmentDataset([wav], mel, **kwargs)


def test_bad_mel_transform_and_empty_files(tmp_path: Path, mel: MelSpectrogram) -> None:
    wav = write(tmp_path / "a.wav", ramp(3000))
    with pytest.raises(TypeError, match="mel_transform must be an nn.Module"):
        SegmentDataset([wav], torch.nn.Identity(), SEGMENT)
    with pytest.raises(ValueError, match="at least one audio file"):
        SegmentDataset([], mel, SEGMENT)


def test_other_rate_is_resampled_and_logged(tmp_path: Path, mel: MelSpectrogram,
                                            caplog: pytest.LogCaptureFixture) -> None:
    wav = write(tmp_path / "slow.wav", np.sin(np.arange(8000) * 0.1).astype(np.float32), 8000)
    with caplog.at_level(logging.INFO, logger="upsampler.training.data"):
        data = UtteranceDataset([wav], mel)
    assert "8000 Hz" in caplog.text and "16000 Hz" in caplog.text and "slow.wav" in caplog.text
    assert data[0][2].shape == (1, 16000)  # one second at 8 kHz is 16000 samples at 16 kHz


def test_utterances_whole_cut_to_hop_with_relative_names(tmp_path: Path,
                                                         mel: MelSpectrogram) -> None:
    sources = {"digits/1": ramp(3 * HOP + 37), "digits/2": ramp(9 * HOP), "hello": ramp(5000)}
    files = [write(tmp_path / f"{name}.wav", s) for name, s in sources.items()]
    data = UtteranceDataset(files, mel)
    assert len(data) == 3
    for index, (name, source) in enumerate(sources.items()):
        got_name, frames, wav = data[index]
        kept = len(source) // HOP
        assert got_name == name and wav.shape == (1, kept * HOP)
        assert frames.shape == (NUM_MELS, kept)
        torch.testing.assert_close(wav[0], torch.from_numpy(source[:kept * HOP]))
        torch.testing.assert_close(frames, mel(wav[0]))


def test_utterance_too_short_for_mel_is_left_out(tmp_path: Path, mel: MelSpectrogram) -> None:
    ok = write(tmp_path / "ok.wav", ramp(3000))
    tiny = write(tmp_path / "tiny.wav", ramp(HOP + 10))  # one frame, less than the reflect pad
    with pytest.warns(ShortFileWarning, match="tiny.wav"):
        data = UtteranceDataset([ok, tiny], mel)
    assert [data[i][0] for i in range(len(data))] == ["ok"]


def test_a_list_starting_with_a_byte_order_mark_finds_its_first_file(tmp_path: Path) -> None:
    for name in ("a", "b"):
        (tmp_path / f"{name}.wav").write_bytes(b"")
    (tmp_path / "list.txt").write_text("a|first\nb|second\n", encoding="utf-8-sig")
    assert (tmp_path / "list.txt").read_bytes().startswith(b"\xef\xbb\xbf")
    assert read_file_list(tmp_path / "list.txt", tmp_path) == [tmp_path / "a.wav",
                                                               tmp_path / "b.wav"]


def test_evaluate_reads_a_list_as_train_does(tmp_path: Path) -> None:
    """wavs/ beside the list when it exists, else the list's own folder (train.py's rule)."""
    from recipe_support import load_recipe

    from upsampler.training.data import default_wav_dir

    input_files = load_recipe("evaluate").input_files
    (tmp_path / "flat").mkdir()
    (tmp_path / "flat" / "a.wav").write_bytes(b"")
    (tmp_path / "flat" / "list.txt").write_text("a|text\n")
    assert input_files(str(tmp_path / "flat" / "list.txt"), None) == [tmp_path / "flat" / "a.wav"]
    (tmp_path / "hifigan" / "wavs").mkdir(parents=True)
    (tmp_path / "hifigan" / "wavs" / "a.wav").write_bytes(b"")
    (tmp_path / "hifigan" / "list.txt").write_text("a|text\n")
    assert input_files(str(tmp_path / "hifigan" / "list.txt"), None) == [
        tmp_path / "hifigan" / "wavs" / "a.wav"]
    assert default_wav_dir(tmp_path / "flat" / "list.txt") == tmp_path / "flat"
