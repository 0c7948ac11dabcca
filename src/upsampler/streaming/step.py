"""One step of a stream as a module with fixed shapes: what ``torch.export`` and ONNX capture.

The eager stream (:mod:`upsampler.streaming.protocol`) cuts its warm-up and stops at the
end by slicing with Python ints. A captured step cannot: every call has the same shapes.
:class:`StreamStep` therefore takes the positions as tensors and keeps the padding fix-up
of every layer on (``Clock(edges=True)``), so one graph serves the whole stream::

    audio, *state = step(mel, frames, *state)
    mel      (B, num_mels, chunk)   the next chunk (zeros past the input's end)
    frames   ()  int64              real frames in it: chunk until the input ends, then
                                    fewer (the last partial chunk), then 0 (flush calls)
    state    position, end, then every layer's tensors (all zeros at the start)
    audio    (B, 1, chunk * hop)    output samples [position * hop - delay, ...): the first
                                    ``delay`` samples of a stream are warm-up; the output
                                    ends at ``frames_total * hop``

``end`` is 0 while the input goes on and becomes ``position + frames`` at the first call
with ``frames < chunk``; from then on every layer pads its windows as the offline
``forward`` pads the input's end.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn
from torch.utils import _pytree as pytree

from upsampler.lengths import check_int
from upsampler.streaming.protocol import OPEN_END, Clock, PositionLines, new_stream

STATE_PREFIX = "state"
COUNTERS = ("position", "end")  # the two int64 entries before the layers' tensors


class StreamStep(nn.Module):
    """``generator``'s stream over chunks of ``chunk_frames`` mel frames, batch
    ``batch_size``: ``forward(mel, frames, *state) -> (audio, *state)`` (module docstring).

    ``initial_state(dtype, device)`` gives the zero state; ``state_names`` names its entries
    (``position``, ``end``, then ``layer_<i>``), in the order ``forward`` takes them.
    """

    def __init__(self, generator: nn.Module, chunk_frames: int, batch_size: int = 1,
                 edges: bool = True) -> None:
        super().__init__()
        self.edges = edges
        self.chunk_frames = check_int("chunk_frames", chunk_frames, 1)
        self.batch_size = check_int("batch_size", batch_size, 1)
        self.generator = generator
        self.stream = new_stream(generator).planned()
        if chunk_frames % self.stream.quantum:
            raise ValueError(
                f"chunk_frames must be a multiple of {self.stream.quantum} for this model, "
                f"got {chunk_frames}"
            )
        self.num_mels: int = generator.num_mels
        self.hop_length: int = generator.hop_length
        self.delay: int = self.stream.delay
        self.reaches = self.stream.reaches()
        weight = next(generator.parameters())
        layers = self.stream.state(batch_size, weight.dtype, weight.device)
        leaves, self._spec = pytree.tree_flatten(layers)
        self.state_shapes = [(), ()] + [tuple(leaf.shape) for leaf in leaves]
        self.state_names = [*COUNTERS, *(f"layer_{i}" for i in range(len(leaves)))]

    def initial_state(self, dtype: torch.dtype, device: torch.device) -> list[Tensor]:
        """The zero state: two int64 counters, then every layer's tensors in ``dtype``."""
        counters = [torch.zeros((), dtype=torch.int64, device=device) for _ in COUNTERS]
        layers = [torch.zeros(shape, dtype=dtype, device=device)
                  for shape in self.state_shapes[len(COUNTERS):]]
        return counters + layers

    def forward(self, mel: Tensor, frames: Tensor, *state: Tensor) -> tuple[Tensor, ...]:
        """``(B, num_mels, chunk), (), *state -> (B, 1, chunk * hop), *state``."""
        position, end, *leaves = state
        chunk = self.chunk_frames
        # the input ends at the first call with fewer than ``chunk`` real frames
        ending = torch.where(frames < chunk, position + frames, torch.zeros_like(end))
        end = torch.where(end > 0, end, ending)
        length = torch.where(end > 0, end, torch.full_like(end, OPEN_END))
        lines = PositionLines(position, length, chunk, self.reaches)
        clock = Clock(position, length, edges=self.edges, lines=lines if self.edges else None)
        layers: Any = pytree.tree_unflatten(list(leaves), self._spec)
        audio, layers = self.stream.advance(mel, layers, clock)
        return (audio, position + chunk, end, *pytree.tree_leaves(layers))

__all__ = ["StreamStep", "STATE_PREFIX", "COUNTERS"]
