"""The BigVGAN generator (NVIDIA/BigVGAN) on the shared skeleton, with its public presets.

``BigVGANGenerator`` is :class:`~upsampler.models.generator.MRFGenerator` with BigVGAN's
parts, from the fields of BigVGAN's ``config.json``::

    mel (B, num_mels, T)
      conv_pre (k7)                                         (B, C0, T)
      stages[i]: upsample (stride u_i) -> MRF of AMP blocks (B, C0 / 2**(i+1), T * u_0 ... u_i)
      Activation1d(Snake) -> conv_post (k7) -> tanh | clamp (B, 1, T * hop_length)

Unlike HiFi-GAN there is no activation before each upsampler; the blocks' anti-aliased
Snake activations do the work. ``anti_alias=False`` applies every Snake at the base rate
instead (same parameters and buffers), the model the aliasing measure compares against.
BigVGAN's flat names map onto the stages (``ups.{i}.0`` is ``stages.{i}.upsample``,
``resblocks.{i * num_kernels + j}`` is ``stages.{i}.mrf.resblocks.{j}``); ``load_bigvgan``
reads BigVGAN's files and ``bigvgan_state_dict`` writes them
(:mod:`upsampler.models.checkpoint`).
"""

from __future__ import annotations

from typing import Any, Sequence

from torch import nn

from upsampler.layers.activation1d import Activation1d
from upsampler.layers.amp import make_amp_block
from upsampler.layers.snake import make_snake
from upsampler.layers.upsample_block import TRANSPOSED
from upsampler.models.generator import Clamp, MRFGenerator

_BASE: dict[str, Any] = dict(
    upsample_rates=(8, 8, 2, 2), upsample_kernel_sizes=(16, 16, 4, 4),
    upsample_initial_channel=512, resblock="1", resblock_kernel_sizes=(3, 7, 11),
    resblock_dilation_sizes=((1, 3, 5), (1, 3, 5), (1, 3, 5)),
    activation="snakebeta", snake_logscale=True, use_tanh_at_final=True, use_bias_at_final=True,
)
PRESETS: dict[str, dict[str, Any]] = {
    # bigvgan_base_22khz_80band: 22.05 kHz, hop 256, 80 mels up to 8 kHz
    "base_22k": dict(_BASE, num_mels=80),
    # bigvgan_base_24khz_100band: 24 kHz, hop 256, 100 mels up to 12 kHz
    "base_24k": dict(_BASE, num_mels=100),
    # bigvgan_v2_24khz_100band_256x: 24 kHz, hop 256, 100 mels, clamp and no final bias
    "v2_24k_256x": dict(
        _BASE, num_mels=100, upsample_rates=(4, 4, 2, 2, 2, 2),
        upsample_kernel_sizes=(8, 8, 4, 4, 4, 4), upsample_initial_channel=1536,
        use_tanh_at_final=False, use_bias_at_final=False,
    ),
}


class BigVGANGenerator(MRFGenerator):
    """Mel spectrogram to waveform, ``(B, num_mels, T) -> (B, 1, T * hop_length)``.

    Arguments are named as in BigVGAN's ``config.json``; ``hop_length`` is
    ``prod(upsample_rates)``. Each upsampler is our ``ConvTranspose1d`` with padding
    ``(k - u) // 2`` (the original's) when ``k - u`` is even, exact lengths otherwise;
    ``upsampler`` (not a BigVGAN field) swaps in another kind from
    ``upsampler.layers.UPSAMPLERS`` for comparisons (only "transposed" loads checkpoints).
    Every conv is weight-normalised; call ``remove_weight_norm()`` before inference.
    Defaults are the base 22 kHz model; ``use_tanh_at_final`` and ``use_bias_at_final``
    default to true as in BigVGAN when a ``config.json`` (v1) does not name them.
    ``anti_alias`` (not a BigVGAN field either) switches the anti-aliasing filters off.
    ``from_preset("base_22k" | "base_24k" | "v2_24k_256x")`` builds a public generator.
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
        activation: str = "snakebeta",
        snake_logscale: bool = True,
        use_tanh_at_final: bool = True,
        use_bias_at_final: bool = True,
        anti_alias: bool = True,
        upsampler: str = TRANSPOSED,
    ) -> None:
        make_snake(activation, 1)  # rejects an unknown activation name before any building
        super().__init__(
            num_mels, upsample_rates, upsample_kernel_sizes, upsample_initial_channel,
            resblock, resblock_kernel_sizes, resblock_dilation_sizes, upsampler,
            make_block=lambda channels, kernel_size, dilation: make_amp_block(
                resblock, channels, kernel_size, dilation, activation, snake_logscale, anti_alias
            ),
            make_activation_post=lambda channels: Activation1d(
                make_snake(activation, channels, snake_logscale), anti_alias=anti_alias
            ),
            output_activation=nn.Tanh() if use_tanh_at_final else Clamp(),
            bias_at_final=use_bias_at_final,
        )
        self.activation = activation
        self.snake_logscale = bool(snake_logscale)
        self.use_tanh_at_final = bool(use_tanh_at_final)
        self.use_bias_at_final = bool(use_bias_at_final)
        self.anti_alias = bool(anti_alias)

    def set_anti_alias(self, anti_alias: bool) -> None:
        """Switch every ``Activation1d`` between anti-aliased and base-rate (in place)."""
        self.anti_alias = bool(anti_alias)
        for module in self.modules():
            if isinstance(module, Activation1d):
                module.anti_alias = self.anti_alias

    def set_polyphase(self, polyphase: bool) -> None:
        """Use the polyphase path (default) or BigVGAN's plain up -> act -> down in every
        ``Activation1d`` (same numbers; for tests and the benchmark)."""
        for module in self.modules():
            if isinstance(module, Activation1d):
                module.polyphase = bool(polyphase) and module.polyphase_fits

