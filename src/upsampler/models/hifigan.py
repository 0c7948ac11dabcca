"""The HiFi-GAN generator (jik876/hifi-gan) on the shared skeleton, with its V1/V2/V3 presets.

``HiFiGANGenerator`` is :class:`~upsampler.models.generator.MRFGenerator` with HiFi-GAN's
parts, from the fields of HiFi-GAN's ``config.json``::

    mel (B, num_mels, T)
      conv_pre (k7)                                          (B, C0, T)
      stages[i]: lrelu(0.1) -> upsample (stride u_i) -> MRF of ResBlock1 | ResBlock2
                                                             (B, C0 / 2**(i+1), T * u_0 ... u_i)
      lrelu(0.01) -> conv_post (k7) -> tanh                  (B, 1, T * hop_length)

The original's flat names map onto the stages one to one (``ups.i`` is
``stages.i.upsample``, ``resblocks.{i * num_kernels + j}`` is ``stages.i.mrf.resblocks.j``);
``load_hifigan`` reads original checkpoints and ``hifigan_state_dict`` writes them
(:mod:`upsampler.models.checkpoint`).
"""

from __future__ import annotations

import functools
import math
from typing import Any, Sequence

import torch
from torch import nn
from torch.nn.utils import parametrize

from upsampler.layers.resblocks import LRELU_SLOPE, make_resblock
from upsampler.layers.upsample_block import TRANSPOSED
from upsampler.lengths import kernel_sizes_for_rates, plan_upsample_rates
from upsampler.models.generator import MRFGenerator

POST_LRELU_SLOPE = 0.01  # the original's last F.leaky_relu(x) uses torch's default slope

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


class HiFiGANGenerator(MRFGenerator):
    """Mel spectrogram to waveform, ``(B, num_mels, T) -> (B, 1, T * hop_length)``.

    Arguments are named as in HiFi-GAN's ``config.json``; ``hop_length`` is
    ``prod(upsample_rates)``. ``upsampler`` picks the upsampling layer from
    ``upsampler.layers.UPSAMPLERS`` ("transposed": our ``ConvTranspose1d``, whose padding
    equals the original ``(k - u) // 2`` whenever ``k - u`` is even, so official
    checkpoints keep their alignment; odd ``k - u`` gets exact lengths instead of the
    original's one extra sample per stage). Every conv is weight-normalised;
    call ``remove_weight_norm()`` before inference. ``from_preset("v1" | "v2" | "v3")``
    builds HiFi-GAN's ``config_v1`` / ``v2`` / ``v3`` generator.
    """

    presets = PRESETS

    def __init__(
        self,
        num_mels: int = 80,
        upsample_rates: Sequence[int] = (8, 8, 2, 2),
        upsample_kernel_sizes: Sequence[int] = (16, 16, 4, 4),
        upsample_initial_channel: int = 512,
        resblock: str = "1",
        resblock_kernel_sizes: Sequence[int] = (3, 7, 11),
        resblock_dilation_sizes: Sequence[Sequence[int]] = ((1, 3, 5), (1, 3, 5), (1, 3, 5)),
        upsampler: str = TRANSPOSED,
    ) -> None:
        super().__init__(
            num_mels, upsample_rates, upsample_kernel_sizes, upsample_initial_channel,
            resblock, resblock_kernel_sizes, resblock_dilation_sizes, upsampler,
            make_block=functools.partial(make_resblock, resblock),
            make_activation_post=lambda channels: nn.LeakyReLU(POST_LRELU_SLOPE),
            output_activation=nn.Tanh(),
            stage_activation=functools.partial(nn.LeakyReLU, LRELU_SLOPE),
        )

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


class DebugHiFiGANGenerator(HiFiGANGenerator):
    """:class:`HiFiGANGenerator` with every weight-normalised convolution rescaled so it
    keeps its input's scale: weight RMS ``1 / sqrt(fan_in)`` (``configs/model/debug.yaml``).

    HiFi-GAN's normal(0, 0.01) init suits 512 channels; at the debug model's 16 each
    convolution shrinks the signal about twentyfold, so after a dozen of them the output is
    the biases alone and no longer depends on the mel (two mels differed by about 1e-8).
    Rescaling the weight-norm gains ``g`` keeps the directions, the architecture and the
    state-dict layout: a checkpoint of it loads into a plain ``HiFiGANGenerator``.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        with torch.no_grad():
            for module in self.modules():
                if not parametrize.is_parametrized(module, "weight"):
                    continue
                weight = module.weight
                fan_in = weight[0].numel()  # Conv1d: in_channels * kernel
                if weight.shape[0] != module.out_channels:  # transposed: (in, out, k) / stride
                    stride = module.stride[0] if isinstance(module.stride, tuple) else module.stride
                    fan_in = weight.shape[0] * weight.shape[-1] / stride
                rms = float(weight.pow(2).mean().sqrt())
                module.parametrizations.weight.original0.mul_(1.0 / (rms * math.sqrt(fan_in)))
