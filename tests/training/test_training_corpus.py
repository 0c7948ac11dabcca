"""Corpus preparation on fabricated inputs: G.722 decoding, transcripts, trimming, split, rerun.

Nothing here downloads: the G.722 prompts are synthetic signals encoded with the g722
package, the transcripts a small fake file, the Debian packages hand-built ``ar`` archives.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from fake_corpus import RATE, encode, make_deb, make_sounds, tone

from upsampler.training import corpus, debian
from upsampler.training.allison import decode_g722, is_speech, read_transcripts
from upsampler.training.corpus import prepare_corpus, split_names, trim_silence
from upsampler.training.corpus_settings import CorpusSettings

SAMPLES_PER_BYTE = 2  # G.722 at 64 kbit/s: 16000 samples/s in 8000 bytes/s


def test_decode_g722_recovers_the_signal_with_a_fresh_decoder() -> None:
    source = tone(0.5, 300.0) + tone(0.5, 1700.0, 3000.0)
    raw = encode(source)
    decoded = decode_g722(raw)
    assert decoded.dtype == np.int16 and decoded.shape == (len(raw) * SAMPLES_PER_BYTE,)
    np.testing.assert_array_equal(decode_g722(raw), decoded)  # no state carried between files
    # the codec's QMF filters delay the output by a few samples: compare at the best lag
    reference, output, span = source.astype(float), decoded.astype(float), len(source) - 64
    errors = [np.sum((output[k:k + span] - reference[:span]) ** 2) for k in range(64)]
    snr_db = 10 * np.log10(np.sum(reference[:span] ** 2) / min(errors))
    assert snr_db > 20


def test_read_transcripts_gzip_comments_and_folders(tmp_path: Path) -> None:
    path = tmp_path / "core-sounds-en.txt.gz"
    with gzip.open(path, "wt", encoding="utf-8") as stream:
        stream.write("; Core Asterisk Sounds\n\nhello: Hello,   world.\ndigits/1: one\n"
                     "beep: [this is a simple beep tone]\nat-tone: At the tone: the time\n")
    assert read_transcripts(path) == {"hello": "Hello, world.", "digits/1": "one",
                                      "beep": "[this is a simple beep tone]",
                                      "at-tone": "At the tone: the time"}


def test_read_transcripts_line_without_colon(tmp_path: Path) -> None:
    path = tmp_path / "t.txt"
    path.write_text("hello: Hello.\njust words\n")
    with pytest.raises(ValueError, match="line 2"):
        read_transcripts(path)


@pytest.mark.parametrize("name, text, speech", [
    ("hello", "Hello.", True),
    ("letters/at", "at [@]", True),
    ("beep", "[this is a simple beep tone]", False),
    ("tt-monkeys", "[sound of monkeys screaming]", False),
    ("silence/1", "(1 second of silence)", False),
    ("empty", "", False),
])
def test_is_speech(name: str, text: str, speech: bool) -> None:
    assert is_speech(name, text) is speech


def test_trim_silence_keeps_the_margin() -> None:
    quiet, speech = np.zeros(4000, dtype=np.int16), tone(0.5)
    trimmed = trim_silence(np.concatenate([quiet, speech, quiet]), RATE, 40.0, 0.05)
    expected = len(speech) + 2 * 800  # 0.05 s margin on each side at 16 kHz
    assert abs(len(trimmed) - expected) <= corpus.TRIM_FRAME  # the detector works in frames
    assert len(trim_silence(np.zeros(3000, dtype=np.int16), RATE, 40.0, 0.05)) == 0


def test_split_every_nth_long_utterance_sorted() -> None:
    # sorted: a b c d e f g; long (>= 1.5 s): a c d e g; every 2nd long one -> c, e
    durations = {"g": 3.0, "a": 2.0, "b": 0.5, "c": 1.5, "d": 4.0, "e": 1.6, "f": 1.0}
    assert split_names(durations, every=2, min_seconds=1.5) == (["a", "b", "d", "f", "g"],
                                                                  ["c", "e"])


def test_prepare_corpus_writes_wavs_lists_and_credit(tmp_path: Path) -> None:
    sounds = make_sounds(tmp_path)
    out = tmp_path / "allison"
    settings = CorpusSettings(holdout_every=2, holdout_min_seconds=1.5)
    summary = prepare_corpus(sounds, tmp_path / "core-sounds-en.txt", out, settings)
    wavs = sorted(p.relative_to(out / "wavs").as_posix() for p in (out / "wavs").rglob("*.wav"))
    assert wavs == ["digits/1.wav", "goodbye.wav", "hello.wav", "letters/1.wav", "vm-intro.wav"]
    assert summary["not_speech"] == ["beep", "silence/1"] and summary["written"] == 5
    # long enough, sorted: goodbye, hello, vm-intro -> every 2nd held out: hello
    assert (out / "validation.txt").read_text() == "hello|Hello.\n"
    assert (out / "training.txt").read_text().splitlines() == [
        "digits/1|one", "goodbye|Goodbye.", "letters/1|one (letter)",
        "vm-intro|Please leave a message."]
    info = sf.info(str(out / "wavs" / "hello.wav"))
    assert (info.samplerate, info.subtype, info.channels) == (RATE, "PCM_16", 1)
    assert abs(info.frames / RATE - (2.0 + 2 * 0.05)) < 0.05  # tone + margins, silence gone
    assert summary["validation"] == {"utterances": 1, "seconds": round(info.frames / RATE, 2)}
    credit = (out / "README.txt").read_text()
    assert "Allison Smith" in credit and "CC-BY-SA-3.0" in credit and "2003-2010" in credit
    assert not list(out.rglob(".*"))  # no temporary file left


def test_prepare_corpus_rerun_skips_done_and_refuses_other_settings(tmp_path: Path) -> None:
    sounds = make_sounds(tmp_path)
    out, transcripts = tmp_path / "allison", tmp_path / "core-sounds-en.txt"
    first = prepare_corpus(sounds, transcripts, out)
    (out / "wavs" / "goodbye.wav").unlink()  # as if the first run had stopped early
    stamp = (out / "wavs" / "hello.wav").stat().st_mtime_ns
    second = prepare_corpus(sounds, transcripts, out)
    assert (second["written"], second["kept"]) == (1, 4)
    assert (out / "wavs" / "hello.wav").stat().st_mtime_ns == stamp
    assert second["training"] == first["training"] and second["validation"] == first["validation"]
    with pytest.raises(ValueError, match="trim_top_db"):
        prepare_corpus(sounds, transcripts, out, CorpusSettings(trim_top_db=50.0))


@pytest.mark.parametrize("field, value", [("trim_top_db", 0.0), ("holdout_every", 0),
                                          ("trim_margin_seconds", -0.1), ("sample_rate", 1.5)])
def test_corpus_settings_reject_bad_values(field: str, value: float) -> None:
    with pytest.raises(ValueError, match=field):
        CorpusSettings(**{field: value})


@pytest.mark.parametrize("tool", ["dpkg-deb", "tarfile"])
def test_unpack_deb(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tool: str) -> None:
    if tool == "dpkg-deb" and debian.shutil.which("dpkg-deb") is None:
        pytest.skip("dpkg-deb is not installed here; the tarfile case covers unpacking")
    if tool == "tarfile":
        monkeypatch.setattr(debian.shutil, "which", lambda name: None)
    deb = make_deb(tmp_path / "fake_1.0_all.deb", {"usr/share/a.txt": b"odd", "b/c": b"even"})
    target = debian.unpack_deb(deb, tmp_path / "unpacked")
    assert (target / "usr/share/a.txt").read_bytes() == b"odd"
    assert (target / "b/c").read_bytes() == b"even"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_unpack_deb_rejects_a_non_deb(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(debian.shutil, "which", lambda name: None)
    fake = tmp_path / "fake_1.0_all.deb"
    fake.write_bytes(b"PK\x03\x04 a zip file")
    with pytest.raises(debian.PackageError, match="not a .deb"):
        debian.unpack_deb(fake, tmp_path / "unpacked")
    assert not (tmp_path / "unpacked").exists()


def test_download_uses_the_cached_deb(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cached = make_deb(tmp_path / "pkg_1.0_all.deb", {"x": b"y"})
    monkeypatch.setattr(debian.subprocess, "run", lambda *a, **k: pytest.fail("ran apt-get"))
    assert debian.download_deb("pkg", tmp_path) == cached


def test_download_without_apt_get_says_what_to_do(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(debian.shutil, "which", lambda name: None)
    with pytest.raises(debian.PackageError, match=r"apt-get is not available.*by hand.*put it in"):
        debian.download_deb("asterisk-core-sounds-en-g722", tmp_path)


def test_download_failure_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = tmp_path / "apt-get"
    fake.write_text("#!/bin/sh\necho \"E: Unable to locate package $2\" >&2\nexit 100\n")
    fake.chmod(0o755)
    monkeypatch.setattr(debian.shutil, "which", lambda name: str(fake))
    expected = r"exit status 100.*Unable to locate.*apt-get update"
    with pytest.raises(debian.PackageError, match=expected):
        debian.download_deb("no-such-package", tmp_path / "cache")
