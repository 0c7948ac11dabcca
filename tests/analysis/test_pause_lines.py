"""Pause-line measure on hand-built utterances whose answer is known by construction."""

from __future__ import annotations

import math

import numpy as np
import pytest

from upsampler.analysis.pause_lines import (
    MIN_PAUSE_SECONDS,
    PAUSE_GUARD_SECONDS,
    find_pauses,
    pause_lines,
)

RATE, HOP = 16000, 200  # the demo's front end: lines every 80 Hz, 99 of them below 8 kHz
SPACING = RATE / HOP
PAUSE_SECONDS, SPEECH_SECONDS = 0.6, 0.6
NOISE_STD, SPEECH_STD = 0.003, 0.3  # pause floor 40 dB below the "speech"
MULTIPLES_BELOW_NYQUIST = int(RATE / 2 / SPACING) - 1  # 99: m = 100 sits on the Nyquist


def utterance(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """pause | speech | pause of white noise; returns (wav, mask of the pause samples)."""
    rng = np.random.default_rng(seed)
    pause, speech = int(PAUSE_SECONDS * RATE), int(SPEECH_SECONDS * RATE)
    stds = np.concatenate([np.full(pause, NOISE_STD), np.full(speech, SPEECH_STD),
                           np.full(pause, NOISE_STD)])
    return rng.standard_normal(len(stds)) * stds, stds == NOISE_STD


def comb(length: int, multiples: range | list[int], amplitude: float, seed: int = 1) -> np.ndarray:
    """Cosines of equal ``amplitude`` at ``m * fs / hop``, random phases: power A^2/2 each."""
    phases = np.random.default_rng(seed).uniform(0, 2 * np.pi, len(multiples))
    time = np.arange(length) / RATE
    return sum(amplitude * np.cos(2 * np.pi * m * SPACING * time + phase)
               for m, phase in zip(multiples, phases))


def test_pauses_are_the_quiet_runs_less_their_guards() -> None:
    wav, _ = utterance()
    guard = int(PAUSE_GUARD_SECONDS * RATE)
    end = len(wav)
    pause = int(PAUSE_SECONDS * RATE)
    assert find_pauses(wav, RATE, HOP) == [(guard, pause - guard), (end - pause + guard, end - guard)]
    short = wav.copy()  # a quiet run shorter than a pause inside the speech is not one
    middle = pause + int(SPEECH_SECONDS * RATE) // 2
    short[middle: middle + int(MIN_PAUSE_SECONDS * RATE) - HOP] *= NOISE_STD / SPEECH_STD
    assert len(find_pauses(short, RATE, HOP)) == 2


def test_comb_in_the_pauses_is_counted_at_its_power_share() -> None:
    source, _ = utterance()
    noise_power = NOISE_STD**2
    comb_power = 3 * noise_power  # -> 75 % of the output's pause power in lines
    amplitude = math.sqrt(2 * comb_power / MULTIPLES_BELOW_NYQUIST)
    output = source + comb(len(source), range(1, MULTIPLES_BELOW_NYQUIST + 1), amplitude)
    found = pause_lines(source, output, RATE, HOP)
    share = comb_power / (comb_power + noise_power)
    assert found.line_fraction == pytest.approx(share, abs=0.02)
    assert found.added_fraction == pytest.approx(share, abs=0.02)
    assert found.added_multiples == tuple(range(1, MULTIPLES_BELOW_NYQUIST + 1))
    assert found.input_line_fraction < 0.01  # white noise holds no lines
    expected_db = 10 * math.log10(comb_power / SPEECH_STD**2)
    assert found.added_level_db == pytest.approx(expected_db, abs=0.3)
    per_line_db = 10 * math.log10(amplitude**2 / 2 / SPEECH_STD**2)
    levels = np.asarray(found.added_levels_db)  # each line over ~30 floor bins' worth of noise
    assert 10 * math.log10(np.mean(10 ** (levels / 10))) == pytest.approx(per_line_db, abs=0.3)
    assert np.allclose(levels, per_line_db, atol=1.5)
    assert found.input_pause_db == pytest.approx(10 * math.log10(noise_power / SPEECH_STD**2),
                                                 abs=0.3)


def test_output_equal_to_input_adds_no_line_and_keeps_the_input_fraction() -> None:
    source, pauses = utterance()
    hum_power = NOISE_STD**2  # the recording's own line at 2 * 80 Hz: half its pause power
    source = source + comb(len(source), [2], math.sqrt(2 * hum_power))
    found = pause_lines(source, source.copy(), RATE, HOP)
    assert found.input_line_fraction == pytest.approx(0.5, abs=0.02)
    assert found.line_fraction == found.input_line_fraction
    assert found.added_multiples == () and found.added_fraction == 0.0
    assert found.added_level_db == -150.0


def test_band_stops_below_the_input_nyquist() -> None:
    source, _ = utterance()
    amplitude = 10 * NOISE_STD
    output = source + comb(len(source), [10, 60], amplitude)  # 800 Hz and 4800 Hz
    full = pause_lines(source, output, RATE, HOP)
    assert full.added_multiples == (10, 60)
    narrow = pause_lines(source, output, RATE, HOP, input_rate=RATE / 2)  # an 8 kHz recording
    assert narrow.nyquist == RATE / 4 and narrow.added_multiples == (10,)
