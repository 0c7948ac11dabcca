"""The HiFi-GAN generator (jik876/hifi-gan) on our layers, with its V1/V2/V3 presets.

Submodule names follow the original so its checkpoints load: ``conv_pre``, ``ups`` (one
upsampler per stage), ``resblocks`` (flat, ``num_kernels`` per stage, stage ``i`` branch
``j`` at index ``i * num_kernels + j``) and ``conv_post``::

    mel (B, num_mels, T)
      conv_pre (k7)                                      (B, C0, T)
      stage i: lrelu(0.1) -> ups[i] (stride u_i) -> MRF  (B, C0 / 2**(i+1), T * u_0 ... u_i)
      lrelu(0.01) -> conv_post (k7) -> tanh              (B, 1, T * hop_length)
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from upsampler.capture import is_capturing
from upsampler.layers.resblocks import (
    LRELU_SLOPE,
    apply_weight_norm,
    init_normal_,
    make_resblock,
    remove_weight_norm,
)
from upsampler.layers.upsample_block import build_upsampler, check_resblock_sizes, fuse_branches
from upsampler.lengths import check_int, kernel_sizes_for_rates, plan_upsample_rates, same_padding

POST_LRELU_SLOPE = 0.01  # the original's last F.leaky_relu(x) uses torch's default slope
EDGE_KERNEL_SIZE = 7  # conv_pre and conv_post
EDGE_PADDING = same_padding(EDGE_KERNEL_SIZE)  # 3: length-keeping

PRESETS: dict[str, dict[str, Any]] = {
    "v1": dict(
        resblock="1", upsample_rates=(8, 8, 2, 2), upsample_kernel_sizes=(16, 16, 4, 4),
        upsample_initial_channel=512, resblock_kernel_sizes=(3, 7, 11),
        resblock_dilation_sizes=((1, 3, 5), (1, 3, 5), (1, 3, 5)),
    ),
    "v2": dict(
        resblock="1", upsample_rates=(8, 8, 2, 2), upsample_kernel_sizes=(16, 16, 4, 4),
        upsample_initial_channel=128, resblock_kernel_sizes=(3, 7, 11),
        resblock_dilation_sizes=((1, 3, 5), (1, 3, 5), (1, 3, 5)),
    ),
    "v3": dict(
        resblock="2", upsample_rates=(8, 8, 4), upsample_kernel_sizes=(16, 16, 8),
        upsample_initial_channel=256, resblock_kernel_sizes=(3, 5, 7),
        resblock_dilation_sizes=((1, 2), (2, 6), (3, 12)),
    ),
}


def _int_tuple(name: str, values: Sequence[int], minimum: int) -> tuple[int, ...]:
    return tuple(check_int(f"{name}[{i}]", v, minimum) for i, v in enumerate(values))


class HiFiGANGenerator(nn.Module):
    """Mel spectrogram to waveform, ``(B, num_mels, T) -> (B, 1, T * hop_length)``.

    Arguments are named as in HiFi-GAN's ``config.json``; ``hop_length`` is
    ``prod(upsample_rates)``. ``upsampler`` picks the upsampling layer from
    ``upsampler.layers.UPSAMPLERS`` ("transposed": our ``ConvTranspose1d``, whose padding
    equals the original ``(k - u) // 2`` whenever ``k - u`` is even, so official
    checkpoints keep their alignment; odd ``k - u`` gets exact lengths instead of the
    original's one extra sample per stage). Every conv is weight-normalised;
    call ``remove_weight_norm()`` before inference.
    """

    def __init__(
        self,
        num_mels: int = 80,
        upsample_rates: Sequence[int] = (8, 8, 2, 2),
        upsample_kernel_sizes: Sequence[int] = (16, 16, 4, 4),
        upsample_initial_channel: int = 512,
        resblock: str = "1",
        resblock_kernel_sizes: Sequence[int] = (3, 7, 11),
        resblock_dilation_sizes: Sequence[Sequence[int]] = ((1, 3, 5), (1, 3, 5), (1, 3, 5)),
        upsampler: str = "transposed",
    ) -> None:
        super().__init__()
        self.num_mels = check_int("num_mels", num_mels, 1)
        self.upsample_rates = _int_tuple("upsample_rates", upsample_rates, 1)
        self.upsample_kernel_sizes = _int_tuple("upsample_kernel_sizes", upsample_kernel_sizes, 1)
        if len(self.upsample_rates) != len(self.upsample_kernel_sizes):
            raise ValueError(
                f"upsample_rates and upsample_kernel_sizes must have the same length, got "
                f"{list(self.upsample_rates)} and {list(self.upsample_kernel_sizes)}"
            )
        check_resblock_sizes(resblock_kernel_sizes, resblock_dilation_sizes)
        check_int("upsample_initial_channel", upsample_initial_channel, 1)
        self.num_upsamples = len(self.upsample_rates)
        self.num_kernels = len(resblock_kernel_sizes)
        if upsample_initial_channel < 2**self.num_upsamples:
            raise ValueError(
                f"upsample_initial_channel={upsample_initial_channel} is halved at each of the "
                f"{self.num_upsamples} stages and must be >= {2**self.num_upsamples}"
            )
        self.hop_length = math.prod(self.upsample_rates)
        self.upsample_initial_channel = upsample_initial_channel
        self.resblock = resblock
        self.resblock_kernel_sizes = tuple(resblock_kernel_sizes)
        self.resblock_dilation_sizes = tuple(tuple(d) for d in resblock_dilation_sizes)
        self.upsampler = upsampler

        self.conv_pre = apply_weight_norm(
            nn.Conv1d(num_mels, upsample_initial_channel, EDGE_KERNEL_SIZE, 1, EDGE_PADDING)
        )
        self.ups = nn.ModuleList()
        self.resblocks = nn.ModuleList()
        channels = upsample_initial_channel
        for u, k in zip(self.upsample_rates, self.upsample_kernel_sizes):
            self.ups.append(build_upsampler(upsampler, channels, channels // 2, u, k))
            channels //= 2
            for k_res, d_res in zip(resblock_kernel_sizes, resblock_dilation_sizes):
                self.resblocks.append(make_resblock(resblock, channels, k_res, d_res))
        self.conv_post = apply_weight_norm(
            init_normal_(nn.Conv1d(channels, 1, EDGE_KERNEL_SIZE, 1, EDGE_PADDING))
        )

    @classmethod
    def from_preset(cls, name: str, **overrides: Any) -> "HiFiGANGenerator":
        """HiFi-GAN's ``config_v1`` / ``v2`` / ``v3`` generator; ``overrides`` replace fields."""
        key = name.lower() if isinstance(name, str) else name
        if key not in PRESETS:
            raise ValueError(f"preset must be one of {sorted(PRESETS)}, got {name!r}")
        return cls(**{**PRESETS[key], **overrides})

    @classmethod
    def from_hop_length(
        cls, hop_length: int, max_rate: int = 8, **overrides: Any
    ) -> "HiFiGANGenerator":
        """A generator for any hop: rates from ``plan_upsample_rates(hop_length, max_rate)``,
        kernels ``kernel_sizes_for_rates(rates)`` (HiFi-GAN's ``k = 2u``); ``overrides``
        replace other fields.
        """
        rates = plan_upsample_rates(hop_length, max_rate)
        if not rates:
            raise ValueError(f"hop_length must be >= 2 to need upsampling, got {hop_length}")
        return cls(
            upsample_rates=rates, upsample_kernel_sizes=kernel_sizes_for_rates(rates),
            **overrides,
        )

    @torch.jit.unused
    def check_mel(self, mel: Tensor) -> None:
        """Raise ``TypeError``/``ValueError`` naming what is wrong with ``mel``."""
        if not isinstance(mel, Tensor):
            raise TypeError(f"mel must be a torch.Tensor, got {type(mel).__name__}")
        if not mel.is_floating_point():
            raise TypeError(f"mel must be a floating-point tensor, got dtype {mel.dtype}")
        if mel.dim() != 3:
            raise ValueError(
                f"mel must have shape (B, num_mels={self.num_mels}, T), got {mel.dim()}-D "
                f"shape {tuple(mel.shape)}"
            )
        if mel.shape[1] != self.num_mels:
            raise ValueError(
                f"mel must have num_mels={self.num_mels} channels, got {mel.shape[1]} "
                f"(shape {tuple(mel.shape)}); is the time axis last?"
            )
        if mel.shape[2] == 0:
            raise ValueError(f"mel must have at least one frame, got shape {tuple(mel.shape)}")
        if not bool(torch.isfinite(mel).all()):
            bad = int((~torch.isfinite(mel)).sum())
            raise ValueError(f"mel contains {bad} NaN or Inf values; it must be finite")

    def forward(self, mel: Tensor) -> Tensor:
        """``(B, num_mels, T) -> (B, 1, T * hop_length)``, samples in [-1, 1]."""
        if not is_capturing():
            self.check_mel(mel)
        x = self.conv_pre(mel)
        for i, up in enumerate(self.ups):
            x = F.leaky_relu(x, LRELU_SLOPE)
            x = up(x)
            stage = self.resblocks[i * self.num_kernels : (i + 1) * self.num_kernels]
            x = fuse_branches(stage, x)
        x = F.leaky_relu(x, POST_LRELU_SLOPE)
        x = self.conv_post(x)
        return torch.tanh(x)

    def remove_weight_norm(self) -> None:
        """Fold weight norm into plain weights for inference (outputs unchanged)."""
        remove_weight_norm(self)
