"""Audio around the generators: the mel front end, audio files, and inference over inputs.

- :mod:`.mel`: HiFi-GAN's log-mel (``MelSpectrogram``, ``mel_spectrogram``) and its
  settings from a ``config.json`` (``mel_kwargs_from_config``);
- :mod:`.io`: reading and writing audio files (``load_audio``, ``save_audio``);
- :mod:`.inference`: ``copy_synthesis`` (waveform -> mel -> waveform of the same length)
  and long inputs in exact overlapping windows (``vocode_in_windows``,
  ``log_mel_in_windows``).
"""

from upsampler._atomic import PathLike
from upsampler.audio.inference import (
    context_frames,
    copy_synthesis,
    log_mel_in_windows,
    vocode_in_windows,
)
from upsampler.audio.io import (
    BUNDLED_SPEECH,
    file_sample_rate,
    load_audio,
    save_audio,
    sound_path,
)
from upsampler.audio.mel import (
    BACKENDS,
    HIFIGAN_AUDIO_FIELDS,
    LOG_CLAMP,
    MAGNITUDE_EPS,
    MelSpectrogram,
    check_wav,
    log_mel,
    mel_filterbank,
    mel_kwargs_from_config,
    mel_spectrogram,
)

__all__ = [
    "BACKENDS",
    "BUNDLED_SPEECH",
    "HIFIGAN_AUDIO_FIELDS",
    "LOG_CLAMP",
    "MAGNITUDE_EPS",
    "MelSpectrogram",
    "PathLike",
    "check_wav",
    "context_frames",
    "copy_synthesis",
    "file_sample_rate",
    "load_audio",
    "log_mel",
    "log_mel_in_windows",
    "mel_filterbank",
    "mel_kwargs_from_config",
    "mel_spectrogram",
    "save_audio",
    "sound_path",
    "vocode_in_windows",
]
