"""The samples a stream holds between steps, kept in one tensor that chunks are written into.

A stream that holds samples (a conv's last ``span - 1`` inputs, a residual's skip input,
a branch's surplus) appends each chunk and later drops what it consumed. ``torch.cat`` of
the held samples and the chunk copies both into a new tensor every step; a
``StreamBuffer`` writes only the chunk, in place, after the held samples and returns a
view of both, so each step copies ``m`` samples instead of ``held + m``::

    storage   [ consumed | held ........ | chunk (written) |  free  ]
                         start                             stop
    append(x) -> view [start, stop)            consume(n): start += n

When the chunk does not fit after ``stop``, the held samples move to the front (or into a
storage twice as long). Writing in place would change tensors that autograd saved for the
backward pass, so while gradients are recorded ``append`` falls back to ``torch.cat`` into
a new tensor (the state is then ordinary tensors, as before). A view returned by
``append`` stays valid until the next ``append``; callers return only fresh tensors.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor

GROWTH = 2  # a new storage holds this many times the samples it must take


def _records_grad() -> bool:
    return torch.is_grad_enabled() and not torch.is_inference_mode_enabled()


class StreamBuffer:
    """Held samples ``(B, C, held)`` plus each appended chunk, along the last dim.

    ``in_place=False`` always concatenates (for a caller that may return a view of what
    ``append`` gave it, which a later in-place write would change).
    """

    def __init__(self, in_place: bool = True) -> None:
        self.in_place = in_place
        self._data: Optional[Tensor] = None
        self._start = 0
        self._stop = 0
        self._owned = False  # storage allocated here, free to write in place

    def __len__(self) -> int:
        return self._stop - self._start

    def view(self) -> Optional[Tensor]:
        """The held samples ``(B, C, held)``, or ``None`` before the first append."""
        if self._data is None:
            return None
        return self._data.narrow(-1, self._start, self._stop - self._start)

    def append(self, x: Tensor) -> Tensor:
        """Write ``x`` after the held samples; return held + ``x`` as ``(B, C, held + m)``."""
        data, length = self._data, x.shape[-1]
        concatenate = not self.in_place or _records_grad()
        if data is None:
            if concatenate:
                self._data, self._start, self._stop, self._owned = x, 0, length, False
                return x
            return self._write_new(x, None)
        held = self._stop - self._start
        if concatenate:
            merged = torch.cat([self.view(), x], dim=-1) if held else x
            self._data, self._start, self._stop, self._owned = merged, 0, held + length, False
            return merged
        fits = (data.shape[:-1] == x.shape[:-1] and data.dtype == x.dtype and data.device == x.device
                and data.is_inference() == torch.is_inference_mode_enabled())
        if not self._owned or not fits or held + length > data.shape[-1]:
            return self._write_new(x, self.view() if held else None)
        if self._stop + length > data.shape[-1]:  # move the held samples to the front
            if held:
                moving = data.narrow(-1, self._start, held)
                if held > self._start:  # source and target overlap
                    moving = moving.clone()
                data.narrow(-1, 0, held).copy_(moving)
            self._start, self._stop = 0, held
        data.narrow(-1, self._stop, length).copy_(x)
        self._stop += length
        return data.narrow(-1, self._start, self._stop - self._start)

    def _write_new(self, x: Tensor, held: Optional[Tensor]) -> Tensor:
        count = 0 if held is None else held.shape[-1]
        total = count + x.shape[-1]
        data = x.new_empty((*x.shape[:-1], GROWTH * total))
        if held is not None:
            data.narrow(-1, 0, count).copy_(held)
        data.narrow(-1, count, x.shape[-1]).copy_(x)
        self._data, self._start, self._stop, self._owned = data, 0, total, True
        return data.narrow(-1, 0, total)

    def consume(self, count: int) -> None:
        """Drop the first ``count`` held samples."""
        self._start += count

    def clear(self) -> None:
        """Drop every held sample and the storage."""
        self._data, self._start, self._stop, self._owned = None, 0, 0, False
