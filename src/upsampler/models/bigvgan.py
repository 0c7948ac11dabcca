"""The BigVGAN generator (NVIDIA/BigVGAN) on our layers, with its public presets.

Submodule names follow the original so its checkpoints load: ``conv_pre``, ``ups`` (stage
``i``'s transposed conv at ``ups[i][0]``), ``resblocks`` (flat, ``num_kernels`` AMP blocks per
stage), ``activation_post`` and ``conv_post``::

    mel (B, num_mels, T)
      conv_pre (k7)                                         (B, C0, T)
      stage i: ups[i] (stride u_i) -> mean of AMP blocks    (B, C0 / 2**(i+1), T * u_0 ... u_i)
      Activation1d(Snake) -> conv_post (k7) -> tanh | clamp (B, 1, T * hop_length)

Unlike HiFi-GAN there is no activation before each upsampler; the blocks' anti-aliased
Snake activations do the work. ``anti_alias=False`` applies every Snake at the base rate
instead (same parameters and buffers), the model the aliasing measure compares against.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import torch
from torch import Tensor, nn

from upsampler.capture import is_capturing
from upsampler.layers.amp import make_amp_block
from upsampler.layers.antialias import Activation1d
from upsampler.layers.resblocks import apply_weight_norm, init_normal_, remove_weight_norm
from upsampler.layers.snake import make_snake
from upsampler.layers.upsample_block import build_upsampler, check_resblock_sizes, fuse_branches
from upsampler.lengths import check_int, same_padding
from upsampler.models.hifigan import HiFiGANGenerator

EDGE_KERNEL_SIZE = 7  # conv_pre and conv_post
EDGE_PADDING = same_padding(EDGE_KERNEL_SIZE)
CLAMP = 1.0  # v2 clamps the output to [-1, 1] instead of tanh
TRANSPOSED = "transposed"
GEOMETRY = ("kernel_size", "stride", "padding", "output_padding", "dilation", "transposed")

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


class StageUpsampler(nn.Sequential):
    """One stage's upsampler in a one-element container, as BigVGAN keeps it (``ups.{i}.0``).

    Callable like the layer, ``(B, C_in, T) -> (B, C_out, T * stride)``, and showing the
    layer's geometry (``kernel_size``, ``stride``, ``padding``, ``output_padding``,
    ``dilation``) so code that inspects ``generator.ups[i]`` sees the upsampler itself.
    """

    def __init__(self, layer: nn.Module) -> None:
        super().__init__(layer)

    def __getattr__(self, name: str) -> Any:
        if name in GEOMETRY:
            return getattr(self[0], name)
        return super().__getattr__(name)


def _int_tuple(name: str, values: Sequence[int], minimum: int) -> tuple[int, ...]:
    return tuple(check_int(f"{name}[{i}]", v, minimum) for i, v in enumerate(values))


class BigVGANGenerator(nn.Module):
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
        activation: str = "snakebeta",
        snake_logscale: bool = True,
        use_tanh_at_final: bool = True,
        use_bias_at_final: bool = True,
        anti_alias: bool = True,
        upsampler: str = TRANSPOSED,
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
        make_snake(activation, 1)  # rejects an unknown activation name before any building
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
        self.activation = activation
        self.snake_logscale = bool(snake_logscale)
        self.use_tanh_at_final = bool(use_tanh_at_final)
        self.use_bias_at_final = bool(use_bias_at_final)
        self.anti_alias = bool(anti_alias)
        self.upsampler = upsampler

        self.conv_pre = apply_weight_norm(
            nn.Conv1d(num_mels, upsample_initial_channel, EDGE_KERNEL_SIZE, 1, EDGE_PADDING)
        )
        self.ups = nn.ModuleList()
        self.resblocks = nn.ModuleList()
        channels = upsample_initial_channel
        for u, k in zip(self.upsample_rates, self.upsample_kernel_sizes):
            up = build_upsampler(upsampler, channels, channels // 2, u, k)
            self.ups.append(StageUpsampler(up))  # BigVGAN's key: ups.{i}.0
            channels //= 2
            for k_res, d_res in zip(resblock_kernel_sizes, resblock_dilation_sizes):
                self.resblocks.append(make_amp_block(
                    resblock, channels, k_res, d_res, activation, snake_logscale, anti_alias
                ))
        self.activation_post = Activation1d(
            make_snake(activation, channels, snake_logscale), anti_alias=anti_alias
        )
        self.conv_post = apply_weight_norm(init_normal_(nn.Conv1d(
            channels, 1, EDGE_KERNEL_SIZE, 1, EDGE_PADDING, bias=use_bias_at_final
        )))

    @classmethod
    def from_preset(cls, name: str, **overrides: Any) -> "BigVGANGenerator":
        """A public BigVGAN generator ("base_22k", "base_24k", "v2_24k_256x")."""
        key = name.lower() if isinstance(name, str) else name
        if key not in PRESETS:
            raise ValueError(f"preset must be one of {sorted(PRESETS)}, got {name!r}")
        return cls(**{**PRESETS[key], **overrides})

    check_mel = HiFiGANGenerator.check_mel  # the same mel checks (shape, dtype, finite)

    def forward(self, mel: Tensor) -> Tensor:
        """``(B, num_mels, T) -> (B, 1, T * hop_length)``, samples in [-1, 1]."""
        if not is_capturing():
            self.check_mel(mel)
        x = self.conv_pre(mel)
        for i, up in enumerate(self.ups):
            x = up(x)
            stage = self.resblocks[i * self.num_kernels : (i + 1) * self.num_kernels]
            x = fuse_branches(stage, x)
        x = self.activation_post(x)
        x = self.conv_post(x)
        if self.use_tanh_at_final:
            return torch.tanh(x)
        return torch.clamp(x, min=-CLAMP, max=CLAMP)

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

    def remove_weight_norm(self) -> None:
        """Fold weight norm into plain weights for inference (outputs unchanged)."""
        remove_weight_norm(self)
