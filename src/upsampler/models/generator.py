"""The mel-to-waveform skeleton HiFi-GAN and BigVGAN share, written once.

::

    mel (B, num_mels, T)
      conv_pre                                              (B, C0, T)
      stages[i]: activation -> upsample (u_i) -> mrf        (B, C_i, T * u_0 ... u_i)
      activation_post -> conv_post -> output_activation     (B, 1, T * hop_length)

Every part of :class:`MelGenerator` is a module passed in. :class:`MRFGenerator` builds
the parts both families share from their ``config.json`` fields (k7 edge convolutions, the
stage loop that halves the channels, weight norm and init) and takes what differs as
factories: HiFi-GAN's stages put leaky ReLU(0.1) before the upsampler and ResBlock1/2 in
the MRF, then leaky ReLU(0.01) and tanh; BigVGAN's have no activation before the upsampler,
AMP blocks, an anti-aliased Snake as ``activation_post`` and tanh or :class:`Clamp` at the
end. The model streams (:mod:`upsampler.streaming`) as the chain of its parts.
"""

from __future__ import annotations

import math
from typing import Any, Callable, ClassVar, Mapping, Optional, Sequence, TypeVar

import torch
from torch import Tensor, nn

from upsampler.conv_transpose.capture import is_capturing
from upsampler.streaming import ChainStream, Pointwise, Stream, StreamingModule, new_stream
from upsampler.layers.upsample_block import (
    MRF,
    UpsampleBlock,
    build_upsampler,
    check_resblock_sizes,
)
from upsampler.layers.weight_norm import apply_weight_norm, init_normal_, remove_weight_norm
from upsampler.lengths import check_int, same_padding

OUTPUT_BOUND = 1.0  # waveform samples lie in [-1, 1]
EDGE_KERNEL_SIZE = 7  # conv_pre and conv_post, in both families
EDGE_PADDING = same_padding(EDGE_KERNEL_SIZE)  # 3: length-keeping
# one MRF branch: (channels, kernel_size, dilation) -> (B, C, T) -> (B, C, T) module
BlockFactory = Callable[[int, int, Sequence[int]], nn.Module]
GeneratorT = TypeVar("GeneratorT", bound="MRFGenerator")


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


class MRFGenerator(MelGenerator):
    """The generator HiFi-GAN and BigVGAN share, built from ``config.json`` fields::

        conv_pre = Conv1d(num_mels, C0, 7)                       (B, C0, T)
        stage i:  stage_activation -> upsampler(C0 / 2**i -> C0 / 2**(i+1),
                  upsample_rates[i], upsample_kernel_sizes[i]) -> MRF of
                  make_block(C0 / 2**(i+1), k_j, d_j) over the resblock branches j
                                                                 (B, C0 / 2**(i+1), T * u_0 ... u_i)
        make_activation_post(C_last) -> conv_post = Conv1d(C_last, 1, 7) -> output_activation

    ``upsampler`` names an entry of ``upsampler.layers.UPSAMPLERS`` (``build_upsampler``:
    normal(0, 0.01) init for "transposed", weight norm). Every conv is weight-normalised;
    ``conv_post`` gets normal(0, 0.01) init and a bias when ``bias_at_final``. The fields are
    kept as attributes (``upsample_kernel_sizes``, ``resblock``, ..., ``num_kernels``);
    ``from_preset`` builds the subclass's ``presets[name]``.
    """

    presets: ClassVar[Mapping[str, Mapping[str, Any]]] = {}

    def __init__(
        self,
        num_mels: int,
        upsample_rates: Sequence[int],
        upsample_kernel_sizes: Sequence[int],
        upsample_initial_channel: int,
        resblock: str,
        resblock_kernel_sizes: Sequence[int],
        resblock_dilation_sizes: Sequence[Sequence[int]],
        upsampler: str,
        make_block: BlockFactory,
        make_activation_post: Callable[[int], nn.Module],
        output_activation: nn.Module,
        stage_activation: Optional[Callable[[], nn.Module]] = None,
        bias_at_final: bool = True,
    ) -> None:
        rates, kernels = check_stage_config(num_mels, upsample_rates, upsample_kernel_sizes,
                                            upsample_initial_channel, resblock_kernel_sizes,
                                            resblock_dilation_sizes)
        conv_pre = apply_weight_norm(
            nn.Conv1d(num_mels, upsample_initial_channel, EDGE_KERNEL_SIZE, 1, EDGE_PADDING)
        )
        stages = []
        channels = upsample_initial_channel
        for u, k in zip(rates, kernels):
            activation = None if stage_activation is None else stage_activation()
            upsample = build_upsampler(upsampler, channels, channels // 2, u, k)
            channels //= 2
            mrf = MRF([make_block(channels, k_res, d_res)
                       for k_res, d_res in zip(resblock_kernel_sizes, resblock_dilation_sizes)])
            stages.append(UpsampleBlock(upsample, mrf, u, activation))
        activation_post = make_activation_post(channels)
        conv_post = apply_weight_norm(init_normal_(nn.Conv1d(
            channels, 1, EDGE_KERNEL_SIZE, 1, EDGE_PADDING, bias=bias_at_final
        )))
        super().__init__(conv_pre, stages, activation_post, conv_post, output_activation)
        self.upsample_kernel_sizes = kernels
        self.upsample_initial_channel = upsample_initial_channel
        self.resblock = resblock
        self.resblock_kernel_sizes = tuple(resblock_kernel_sizes)
        self.resblock_dilation_sizes = tuple(tuple(d) for d in resblock_dilation_sizes)
        self.upsampler = upsampler
        self.num_upsamples = len(rates)
        self.num_kernels = len(self.resblock_kernel_sizes)

    @classmethod
    def from_preset(cls: type[GeneratorT], name: str, **overrides: Any) -> GeneratorT:
        """The generator of preset ``name`` (one of ``cls.presets``, any case);
        ``overrides`` replace fields."""
        key = name.lower() if isinstance(name, str) else name
        if key not in cls.presets:
            raise ValueError(f"preset must be one of {sorted(cls.presets)}, got {name!r}")
        return cls(**{**cls.presets[key], **overrides})
