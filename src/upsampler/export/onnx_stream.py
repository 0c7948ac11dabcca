"""Running an exported streaming step (``export_streaming``) in onnxruntime, with numpy only.

:class:`OnnxStream` holds the graph's state and a buffer of mel frames short of a chunk::

    stream = OnnxStream("v1_chunk8.onnx")
    for mel in chunks:                 # (num_mels, m) or (B, num_mels, m) float32, any m
        play(stream.step(mel))         # the audio samples that became final
    play(stream.flush())               # the rest; the stream is closed until reset()

Concatenated, the outputs equal the model's offline ``model(mel)``. The stream runs on
numpy and onnxruntime alone (imported when a session opens); torch is not called.
"""

from __future__ import annotations

import json
import os
from typing import Any, Optional, Union

import numpy as np

from upsampler.streaming.sessions import StreamClosedError

METADATA_KEY = "upsampler.stream"  # where export_streaming writes the JSON metadata
MEL_NAME, FRAMES_NAME = "mel", "frames"
ORT_ERRORS_ONLY = 3  # onnxruntime log severity: 0 verbose, 1 info, 2 warning, 3 error
PathLike = Union[str, os.PathLike]


def onnx_session(path: PathLike, num_threads: Optional[int] = None,
                 spinning: bool = False) -> Any:
    """An onnxruntime CPU session of ``path``: all graph optimisations, sequential execution,
    ``num_threads`` intra-op threads (None: onnxruntime's default) and one inter-op thread.

    With a thread count set, the pool's threads spin between ops only with ``spinning``:
    on a machine shared with other work a spinning thread takes cores the others need, but
    a streaming step is hundreds of small ops, and waking a sleeping thread for each costs
    more than the op.
    """
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.log_severity_level = ORT_ERRORS_ONLY  # not its notes on nodes it cannot fold
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    if num_threads is not None:
        options.intra_op_num_threads, options.inter_op_num_threads = int(num_threads), 1
        options.add_session_config_entry("session.intra_op.allow_spinning", str(int(spinning)))
    return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


class OnnxStream:
    """The streaming step file at ``path`` run chunk by chunk (see the module docstring).

    ``chunk_frames`` / ``fingerprint`` (if given) must match the file's, so a graph written
    for another chunk size or other weights fails at once (``weights_fingerprint(model)``
    gives a model's). ``spinning`` (on by default) keeps onnxruntime's threads spinning
    between the step's many small ops (:func:`onnx_session`), where waking them for each op
    costs more than the op at small chunks; turn it off on a machine whose cores other work
    needs. A chunk with the wrong mel count, dtype or batch, or non-finite
    values, raises a one-line error and leaves the stream as it was.
    """

    def __init__(self, path: PathLike, num_threads: Optional[int] = None,
                 chunk_frames: Optional[int] = None, fingerprint: Optional[str] = None,
                 spinning: bool = True) -> None:
        self.session = onnx_session(path, num_threads, spinning)
        raw = self.session.get_modelmeta().custom_metadata_map.get(METADATA_KEY)
        if raw is None:
            raise ValueError(f"{path} is not a streaming step (no {METADATA_KEY!r} metadata)")
        self.metadata = meta = json.loads(raw)
        for name, wanted in (("chunk_frames", chunk_frames), ("fingerprint", fingerprint)):
            if wanted is not None and meta[name] != wanted:
                raise ValueError(f"{path} was exported with {name}={meta[name]!r}, not {wanted!r}")
        self.chunk_frames, self.hop_length = meta["chunk_frames"], meta["hop_length"]
        self.num_mels, self.batch_size = meta["num_mels"], meta["batch_size"]
        self.delay, self.sample_rate = meta["delay_samples"], meta["sample_rate"]
        self.reset()

    def reset(self) -> None:
        """Forget every chunk: the next ``step`` starts a new utterance."""
        self.state = {s["input"]: np.zeros(s["shape"], dtype=s["dtype"])
                      for s in self.metadata["states"]}
        self.pending = np.zeros((self.batch_size, self.num_mels, 0), np.float32)
        self.unbatched: Optional[bool] = None
        self.received = self.emitted = self.produced = 0
        self.closed = False

    def _check(self, mel: Any) -> np.ndarray:
        if self.closed:
            raise StreamClosedError("step() after flush(): the stream has ended; call reset()")
        if hasattr(mel, "detach"):  # a torch tensor
            mel = mel.detach().cpu().numpy()
        if not isinstance(mel, np.ndarray):
            raise TypeError(f"mel chunk must be a numpy array, got {type(mel).__name__}")
        if mel.dtype != np.float32:
            raise TypeError(f"mel chunk must be float32, got {mel.dtype}")
        if mel.ndim not in (2, 3) or mel.shape[-2] != self.num_mels:
            raise ValueError(f"mel chunk must have shape (B, num_mels={self.num_mels}, T) or "
                             f"(num_mels={self.num_mels}, T), got {mel.shape}")
        batch = 1 if mel.ndim == 2 else mel.shape[0]
        if batch != self.batch_size:
            raise ValueError(f"mel chunk batch size {batch} differs from the graph's "
                             f"{self.batch_size} (export_streaming(batch_size=...))")
        if self.unbatched is not None and (mel.ndim == 2) != self.unbatched:
            raise ValueError("mel chunk must keep the stream's batched or unbatched form")
        if not np.isfinite(mel).all():
            raise ValueError("mel chunk contains NaN or Inf values; it must be finite")
        return mel

    def _run(self, mel: np.ndarray, frames: int) -> np.ndarray:
        feed = {MEL_NAME: mel, FRAMES_NAME: np.array(frames, np.int64), **self.state}
        audio, *states = self.session.run(None, feed)
        self.state = {s["input"]: value for s, value in zip(self.metadata["states"], states)}
        start = self.produced
        self.produced += audio.shape[-1]
        return audio[:, :, max(self.delay - start, 0):]  # warm-up samples are cut

    def _out(self, pieces: list[np.ndarray]) -> np.ndarray:
        empty = np.zeros((self.batch_size, 1, 0), np.float32)
        audio = np.concatenate([empty, *pieces], axis=-1)
        self.emitted += audio.shape[-1]
        return audio[0] if self.unbatched else audio

    def step(self, mel: Any) -> np.ndarray:
        """``(B, num_mels, m) -> (B, 1, n)`` (or unbatched): the samples that became final."""
        mel = self._check(mel)
        self.unbatched = mel.ndim == 2
        frames = mel[None] if self.unbatched else mel
        self.pending = np.concatenate([self.pending, frames], axis=-1)
        self.received += frames.shape[-1]
        pieces, chunk = [], self.chunk_frames
        while self.pending.shape[-1] >= chunk:
            piece, self.pending = self.pending[:, :, :chunk], self.pending[:, :, chunk:]
            pieces.append(self._run(np.ascontiguousarray(piece), chunk))
        return self._out(pieces)

    def flush(self) -> np.ndarray:
        """End the utterance: ``(B, 1, received * hop - emitted)``; then closed until reset."""
        if self.closed:
            raise StreamClosedError("flush() after flush(): the stream has ended; call reset()")
        if self.received == 0:
            raise ValueError("flush() before any mel frame: the stream has received 0 frames")
        chunk, total = self.chunk_frames, self.received * self.hop_length
        frames = self.pending.shape[-1]
        pad = np.zeros((self.batch_size, self.num_mels, chunk - frames), np.float32)
        pieces = [self._run(np.concatenate([self.pending, pad], axis=-1), frames)]
        zeros = np.zeros((self.batch_size, self.num_mels, chunk), np.float32)
        while self.produced < self.delay + total:
            pieces.append(self._run(zeros, 0))
        self.closed = True
        audio = self._out(pieces)
        keep = audio.shape[-1] - (self.emitted - total)  # samples past the end are cut
        self.emitted = total
        return audio[..., :keep]


__all__ = ["OnnxStream"]
