"""The streaming protocol: every module steps on chunks with its own state, exactly.

A stream is the state of one module over one utterance. ``new_stream(module)`` builds it
and every stream has the same three parts::

    stream.step(x)    (B, C_in, m) -> (B, C_out, n): the output samples that became final
    stream.flush()    end of input: (B, C_out, rest), so steps + flush == module(x_whole)
    stream.context    Context(stride, left, right): the module's receptive field

A module opts in in one of four ways:

- subclass :class:`StreamingModule` and define ``new_stream(self) -> Stream`` from the
  streams of its children (``new_stream(child)``) and the generic streams of
  :mod:`upsampler.layers.streams` (pointwise, chain, residual, branch mean, padded filter,
  overlap-add); a container needs nothing else;
- subclass :class:`Pointwise` if ``forward`` acts on each time step alone (activations);
- subclass :class:`PaddedFilter` and define ``valid`` for a sliding-window op on a zero-
  or replicate-padded input (low-pass filters, strided convs with asymmetric padding);
- ``register_stream(cls, rule)`` for a class one cannot subclass (torch's own layers are
  registered here: ``nn.Conv1d``, ``nn.ConvTranspose1d``, ``nn.Sequential``, activations).

The offline ``forward`` stays the one description of the computation: leaves stream by
running their own arithmetic on the samples they hold, containers by composing their
children's streams in the order their ``forward`` composes the children. A
``StreamingModule`` also carries the session API::

    with model.streaming(batch_size=1):
        for chunk in chunks:
            play(model.step(chunk))
        play(model.flush())
"""

from __future__ import annotations

import contextlib
from typing import Callable, Iterator, Optional

import torch.nn.functional as F
from torch import Tensor, nn

from upsampler.conv_transpose.module import ConvTranspose1d
from upsampler.layers.overlap_add import ConvTransposeStream
from upsampler.layers.streams import (
    PAD_MODES,
    ChainStream,
    Context,
    PaddedFilterStream,
    PointwiseStream,
    Stream,
    conv_stream,
)
from upsampler.lengths import check_int

StreamRule = Callable[[nn.Module], Stream]
_RULES: dict[type, StreamRule] = {}
POINTWISE_ACTIVATIONS = (
    nn.Identity, nn.LeakyReLU, nn.ReLU, nn.Tanh, nn.Sigmoid, nn.SiLU, nn.GELU, nn.ELU,
    nn.Hardtanh,
)


def register_stream(cls: type, rule: StreamRule) -> None:
    """Stream every module of exactly type ``cls`` with ``rule(module) -> Stream``."""
    if not isinstance(cls, type) or not issubclass(cls, nn.Module):
        raise TypeError(f"cls must be an nn.Module subclass, got {cls!r}")
    _RULES[cls] = rule


def new_stream(module: nn.Module) -> Stream:
    """A fresh stream (empty state) of ``module``; raises ``TypeError`` if it has no rule."""
    if isinstance(module, StreamingModule):
        return module.new_stream()
    rule = _RULES.get(type(module))
    if rule is None:
        # a weight-normed module's class is Parametrized<Cls>: the rule of <Cls> applies
        cls = type(module)
        if cls.__name__.startswith("Parametrized"):
            rule = _RULES.get(cls.__bases__[0])
    if rule is None:
        raise TypeError(
            f"{type(module).__name__} has no streaming rule: subclass StreamingModule and "
            f"define new_stream(), subclass Pointwise, or call register_stream()"
        )
    return rule(module)


def stream_context(module: nn.Module) -> Context:
    """``Context(stride, left, right)`` of ``module``: its output ``j`` reads input ``t`` only
    if ``t * stride`` lies in ``[j - left, j + right]`` (see :class:`Context`)."""
    return new_stream(module).context


def _unbatched(x: Tensor) -> bool:
    if not isinstance(x, Tensor):
        raise TypeError(f"chunk must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() not in (2, 3):
        raise ValueError(
            f"chunk must be 3-D (B, C, T) or 2-D (C, T), got shape {tuple(x.shape)}"
        )
    return x.dim() == 2


class StreamingModule(nn.Module):
    """Base for modules that stream: define ``new_stream``; get ``streaming``/``step``/``flush``.

    The session state lives in ``self._session`` only inside ``with self.streaming():``;
    ``step`` takes ``(B, C, m)`` or unbatched ``(C, m)`` chunks, ``flush`` ends the input.
    """

    _session: Optional[Stream] = None
    _session_unbatched: Optional[bool] = None

    def new_stream(self) -> Stream:
        """A fresh stream of this module; containers compose their children's streams."""
        raise NotImplementedError(f"{type(self).__name__} must define new_stream()")

    @contextlib.contextmanager
    def streaming(self, batch_size: Optional[int] = None) -> Iterator["StreamingModule"]:
        """Open a stream for the ``with`` block; ``batch_size`` (if given) is checked per chunk."""
        if self._session is not None:
            raise RuntimeError(f"{type(self).__name__} is already streaming")
        self._session = new_stream(self)
        self._session_batch = batch_size
        self._session_unbatched = None
        try:
            yield self
        finally:
            self._session = None
            self._session_unbatched = None

    def _require_session(self) -> Stream:
        if self._session is None:
            raise RuntimeError("step()/flush() outside `with module.streaming():`")
        return self._session

    def step(self, chunk: Tensor) -> Tensor:
        """``(B, C_in, m) -> (B, C_out, n)`` (or unbatched): the samples that became final."""
        session = self._require_session()
        unbatched = _unbatched(chunk)
        if self._session_unbatched is not None and unbatched != self._session_unbatched:
            raise ValueError("chunk must keep the stream's batched / unbatched form")
        if not unbatched and self._session_batch is not None:
            if chunk.shape[0] != self._session_batch:
                raise ValueError(
                    f"chunk batch size {chunk.shape[0]} differs from streaming(batch_size="
                    f"{self._session_batch})"
                )
        self._session_unbatched = unbatched
        if unbatched:
            return session.step(chunk.unsqueeze(0)).squeeze(0)
        return session.step(chunk)

    def flush(self) -> Tensor:
        """The rest of the output once the input has ended; the stream is then empty again."""
        session = self._require_session()
        out = session.flush()
        self._session = new_stream(self)
        unbatched, self._session_unbatched = self._session_unbatched, None
        return out.squeeze(0) if unbatched else out


class Pointwise(StreamingModule):
    """Base for modules whose ``forward`` acts on each time step alone (activations)."""

    def new_stream(self) -> Stream:
        return PointwiseStream(self.forward)


class PaddedFilter(StreamingModule):
    """Base for ``forward(x) = valid(pad(x))``: a sliding-window op on a padded input.

    ``valid`` maps ``L`` samples to ``((L - span) // hop + 1) * up`` samples, window ``w``
    reading ``[w * hop, w * hop + span)`` (see ``PaddedFilterStream``); ``pad_mode`` is
    "zeros" or "replicate". ``forward`` and the stream both call ``valid``, so the
    computation is written once. ``(B, C_in, T) -> (B, out_channels, T_out)``.
    """

    def __init__(
        self,
        out_channels: int,
        span: int,
        pad_left: int,
        pad_right: int,
        pad_mode: str = "zeros",
        hop: int = 1,
        up: int = 1,
    ) -> None:
        super().__init__()
        check_int("out_channels", out_channels, 1)
        check_int("span", span, 1)
        check_int("pad_left", pad_left, 0)
        check_int("pad_right", pad_right, 0)
        check_int("hop", hop, 1)
        check_int("up", up, 1)
        if pad_mode not in PAD_MODES:
            raise ValueError(f"pad_mode must be one of {PAD_MODES}, got {pad_mode!r}")
        self.out_channels, self.span, self.hop, self.up = out_channels, span, hop, up
        self.pad_left, self.pad_right, self.pad_mode = pad_left, pad_right, pad_mode

    def valid(self, x: Tensor) -> Tensor:
        """The op on an already padded input, ``(B, C_in, L) -> (B, C_out, n * up)``."""
        raise NotImplementedError(f"{type(self).__name__} must define valid()")

    def forward(self, x: Tensor) -> Tensor:
        """``(B, C_in, T) -> (B, out_channels, ((T + pads - span) // hop + 1) * up)``."""
        mode = "constant" if self.pad_mode == "zeros" else self.pad_mode
        return self.valid(F.pad(x, (self.pad_left, self.pad_right), mode=mode))

    def new_stream(self) -> Stream:
        return PaddedFilterStream(
            self.valid, self.out_channels, self.span, self.pad_left, self.pad_right,
            self.pad_mode, self.hop, self.up,
        )


def _sequential_stream(module: nn.Module) -> Stream:
    return ChainStream([new_stream(child) for child in module])


def _pointwise_stream(module: nn.Module) -> Stream:
    # ``forward`` directly: a streaming step calls it per chunk, without the hook dispatch
    return PointwiseStream(module.forward)


for _activation in POINTWISE_ACTIVATIONS:
    register_stream(_activation, _pointwise_stream)
register_stream(nn.Sequential, _sequential_stream)
register_stream(nn.Conv1d, conv_stream)
register_stream(nn.ConvTranspose1d, ConvTransposeStream)
register_stream(ConvTranspose1d, ConvTransposeStream)

__all__ = [
    "Context", "Stream", "StreamingModule", "Pointwise", "PaddedFilter", "new_stream",
    "register_stream", "stream_context",
]
