"""The mel-to-waveform skeleton HiFi-GAN and BigVGAN share, written once.

::

    mel (B, num_mels, T)
      conv_pre                                              (B, C0, T)
      stages[i]: activation -> upsample (u_i) -> mrf        (B, C_i, T * u_0 ... u_i)
      activation_post -> conv_post -> output_activation     (B, 1, T * hop_length)

Every part is a module passed in: HiFi-GAN's ``stages[i]`` are ``UpsampleBlock.hifigan``
(leaky ReLU(0.1), transposed conv, MRF of ResBlock1/2), its ``activation_post`` leaky
ReLU(0.01) and ``output_activation`` tanh; BigVGAN's stages have no activation, AMP blocks,
an anti-aliased Snake as ``activation_post`` and tanh or :class:`Clamp` at the end. The
model streams (:mod:`upsampler.layers.streaming`) as the chain of its parts.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import Tensor, nn

from upsampler.conv_transpose.capture import is_capturing
from upsampler.layers.streaming import Pointwise, Stream, StreamingModule, new_stream
from upsampler.layers.streams import ChainStream
from upsampler.layers.weight_norm import remove_weight_norm
from upsampler.layers.upsample_block import check_resblock_sizes
from upsampler.lengths import check_int

OUTPUT_BOUND = 1.0  # waveform samples lie in [-1, 1]


class Clamp(Pointwise):
    """Clip every sample to ``[-bound, bound]`` (BigVGAN-v2's output without tanh)."""

    def __init__(self, bound: float = OUTPUT_BOUND) -> None:
        super().__init__()
        self.bound = bound

    def forward(self, x: Tensor) -> Tensor:
        """``(B, C, T) -> (B, C, T)``."""
        return torch.clamp(x, -self.bound, self.bound)

    def extra_repr(self) -> str:
        return f"bound={self.bound}"


def _int_tuple(name: str, values: Sequence[int], minimum: int) -> tuple[int, ...]:
    return tuple(check_int(f"{name}[{i}]", v, minimum) for i, v in enumerate(values))


def check_stage_config(
    num_mels: int,
    upsample_rates: Sequence[int],
    upsample_kernel_sizes: Sequence[int],
    upsample_initial_channel: int,
    resblock_kernel_sizes: Sequence[int],
    resblock_dilation_sizes: Sequence[Sequence[int]],
) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Check the fields HiFi-GAN and BigVGAN configs share; the rates and kernels as ints.

    Raises ``ValueError`` / ``TypeError`` naming the field: one rate per kernel, positive
    integers, and channels that survive halving at every stage.
    """
    check_int("num_mels", num_mels, 1)
    rates = _int_tuple("upsample_rates", upsample_rates, 1)
    kernels = _int_tuple("upsample_kernel_sizes", upsample_kernel_sizes, 1)
    if len(rates) != len(kernels):
        raise ValueError(
            f"upsample_rates and upsample_kernel_sizes must have the same length, got "
            f"{list(rates)} and {list(kernels)}"
        )
    check_resblock_sizes(resblock_kernel_sizes, resblock_dilation_sizes)
    check_int("upsample_initial_channel", upsample_initial_channel, 1)
    if upsample_initial_channel < 2 ** len(rates):
        raise ValueError(
            f"upsample_initial_channel={upsample_initial_channel} is halved at each of the "
            f"{len(rates)} stages and must be >= {2 ** len(rates)}"
        )
    return rates, kernels


class MelGenerator(StreamingModule):
    """Mel spectrogram to waveform: ``(B, num_mels, T) -> (B, 1, T * hop_length)``.

    ``conv_pre`` must be an ``nn.Conv1d`` (its ``in_channels`` is ``num_mels``), each
    stage must have an integer ``stride`` (``UpsampleBlock`` has), ``hop_length`` is the
    product of the strides. Unbatched ``(num_mels, T)`` gives ``(1, T * hop_length)``.
    """

    def __init__(
        self,
        conv_pre: nn.Conv1d,
        stages: Sequence[nn.Module],
        activation_post: nn.Module,
        conv_post: nn.Module,
        output_activation: nn.Module,
    ) -> None:
        super().__init__()
        if not isinstance(conv_pre, nn.Conv1d):
            raise TypeError(f"conv_pre must be an nn.Conv1d, got {type(conv_pre).__name__}")
        if len(stages) == 0:
            raise ValueError("stages must list at least one upsampling stage, got []")
        for i, stage in enumerate(stages):
            check_int(f"stages[{i}].stride", getattr(stage, "stride", None), 1)
        self.num_mels: int = conv_pre.in_channels
        self.upsample_rates: tuple[int, ...] = tuple(stage.stride for stage in stages)
        self.hop_length: int = math.prod(self.upsample_rates)
        self.conv_pre = conv_pre
        self.stages = nn.ModuleList(stages)
        self.activation_post = activation_post
        self.conv_post = conv_post
        self.output_activation = output_activation

    @property
    def ups(self) -> tuple[nn.Module, ...]:
        """Each stage's upsampler (the original's ``ups[i]``), read-only."""
        return tuple(stage.upsample for stage in self.stages)

    @torch.jit.unused
    def check_mel(self, mel: Tensor) -> None:
        """Raise ``TypeError``/``ValueError`` naming what is wrong with ``mel``."""
        if not isinstance(mel, Tensor):
            raise TypeError(f"mel must be a torch.Tensor, got {type(mel).__name__}")
        if not mel.is_floating_point():
            raise TypeError(f"mel must be a floating-point tensor, got dtype {mel.dtype}")
        if mel.dim() not in (2, 3):
            raise ValueError(
                f"mel must have shape (B, num_mels={self.num_mels}, T) or (num_mels, T), got "
                f"{mel.dim()}-D shape {tuple(mel.shape)}"
            )
        if mel.shape[-2] != self.num_mels:
            raise ValueError(
                f"mel must have num_mels={self.num_mels} channels, got {mel.shape[-2]} "
                f"(shape {tuple(mel.shape)}); is the time axis last?"
            )
        if mel.shape[-1] == 0:
            raise ValueError(f"mel must have at least one frame, got shape {tuple(mel.shape)}")
        if not bool(torch.isfinite(mel).all()):
            bad = int((~torch.isfinite(mel)).sum())
            raise ValueError(f"mel contains {bad} NaN or Inf values; it must be finite")

    def forward(self, mel: Tensor) -> Tensor:
        """``(B, num_mels, T) -> (B, 1, T * hop_length)``; unbatched ``(num_mels, T) ->
        (1, T * hop_length)``."""
        if not is_capturing():
            self.check_mel(mel)
        batched = mel.dim() == 3
        x = self.conv_pre(mel if batched else mel.unsqueeze(0))
        for stage in self.stages:
            x = stage(x)
        x = self.conv_post(self.activation_post(x))
        x = self.output_activation(x)
        return x if batched else x.squeeze(0)

    def new_stream(self) -> Stream:
        parts = [self.conv_pre, *self.stages, self.activation_post, self.conv_post,
                 self.output_activation]
        return ChainStream([new_stream(part) for part in parts])

    def remove_weight_norm(self) -> None:
        """Fold weight norm into plain weights for inference (outputs unchanged)."""
        remove_weight_norm(self)
