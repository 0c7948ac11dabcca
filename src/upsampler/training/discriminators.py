"""HiFi-GAN's discriminators with configurable widths: multi-period and multi-scale.

Both take a waveform batch ``(B, 1, L)`` and return ``(scores, feature_maps)``: one score
tensor per sub-discriminator and, for each, the list of activations after every
convolution (the input of the feature-matching loss). The layer structure is
jik876/hifi-gan's ``DiscriminatorP`` / ``DiscriminatorS``; the channel counts are
arguments, so the published widths (``FULL_*``) and a small CPU configuration
(``SMALL_*``) are the same classes.

Period discriminator ``p``: the waveform, right-padded (reflect) to a multiple of ``p``,
is folded into a 2-D image ``(B, 1, L / p, p)`` (column ``j`` holds samples ``j, j + p,
...``); 5 x 1 convolutions stride 3 along time, then a 3 x 1 projection to one channel.
Scale discriminator: grouped 1-D convolutions on the raw waveform and on its x2 and x4
average-pooled versions (``AvgPool1d(4, 2, padding=2)`` each time).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils import parametrizations

from upsampler.lengths import check_int, same_padding

LRELU_SLOPE = 0.1
PERIODS = (2, 3, 5, 7, 11)

# DiscriminatorP: four 5 x 1 convolutions with stride 3, one with stride 1, then the projection
PERIOD_KERNEL_SIZE, PERIOD_STRIDE, PROJECTION_KERNEL_SIZE = 5, 3, 3
FULL_PERIOD_CHANNELS = (32, 128, 512, 1024, 1024)
SMALL_PERIOD_CHANNELS = (8, 16, 32, 64, 64)

# DiscriminatorS: (kernel, stride) of its seven convolutions, then the projection; HiFi-GAN groups
SCALE_LAYOUT = ((15, 1), (41, 2), (41, 2), (41, 4), (41, 4), (41, 1), (5, 1))
FULL_SCALE_GROUPS = (1, 4, 16, 16, 16, 16, 1)
FULL_SCALE_CHANNELS = (128, 128, 256, 512, 1024, 1024, 1024)
SMALL_SCALE_CHANNELS = (16, 16, 32, 64, 128, 128, 128)
NUM_SCALES = 3
POOL_KERNEL_SIZE, POOL_STRIDE, POOL_PADDING = 4, 2, 2

Scores = list[Tensor]
FeatureMaps = list[list[Tensor]]


def _check_channels(name: str, channels: Sequence[int], count: int) -> tuple[int, ...]:
    if isinstance(channels, (str, bytes)) or len(channels) != count:
        raise ValueError(f"{name} must list {count} channel counts, got {channels!r}")
    return tuple(check_int(f"{name}[{i}]", c, 1) for i, c in enumerate(channels))


def _norm(module: nn.Module, spectral: bool) -> nn.Module:
    if spectral:
        return parametrizations.spectral_norm(module)
    return parametrizations.weight_norm(module)


def _check_waveform(wav: Tensor) -> None:
    if not isinstance(wav, Tensor) or wav.dim() != 3 or wav.shape[1] != 1:
        found = tuple(wav.shape) if isinstance(wav, Tensor) else type(wav).__name__
        raise ValueError(f"wav must have shape (B, 1, L), got {found}")


class PeriodDiscriminator(nn.Module):
    """One period of the multi-period discriminator: ``(B, 1, L) -> (B, ceil(L / p) ...)``.

    The score is flattened to ``(B, N)``; feature maps are ``(B, C_i, T_i, p)``.
    """

    def __init__(self, period: int, channels: Sequence[int] = FULL_PERIOD_CHANNELS,
                 spectral: bool = False) -> None:
        super().__init__()
        self.period = check_int("period", period, 1)
        widths = _check_channels("channels", channels, len(FULL_PERIOD_CHANNELS))
        padding = (same_padding(PERIOD_KERNEL_SIZE), 0)
        self.convs = nn.ModuleList()
        in_channels = 1
        for i, out_channels in enumerate(widths):
            stride = PERIOD_STRIDE if i < len(widths) - 1 else 1
            conv = nn.Conv2d(in_channels, out_channels, (PERIOD_KERNEL_SIZE, 1), (stride, 1),
                             padding=padding)
            self.convs.append(_norm(conv, spectral))
            in_channels = out_channels
        projection = nn.Conv2d(in_channels, 1, (PROJECTION_KERNEL_SIZE, 1), 1,
                               padding=(same_padding(PROJECTION_KERNEL_SIZE), 0))
        self.conv_post = _norm(projection, spectral)

    def forward(self, wav: Tensor) -> tuple[Tensor, list[Tensor]]:
        """``(B, 1, L) -> (B, N)`` score and six feature maps ``(B, C_i, T_i, period)``."""
        batch, channels, length = wav.shape
        if length % self.period:
            extra = self.period - length % self.period
            mode = "reflect" if extra < length else "replicate"
            wav = F.pad(wav, (0, extra), mode)
            length += extra
        x = wav.view(batch, channels, length // self.period, self.period)  # (B, 1, L/p, p)
        features = []
        for conv in self.convs:
            x = F.leaky_relu(conv(x), LRELU_SLOPE)
            features.append(x)
        x = self.conv_post(x)
        features.append(x)
        return x.flatten(1), features  # (B, 1, T, p) -> (B, T * p)


class MultiPeriodDiscriminator(nn.Module):
    """Period discriminators for ``periods`` (HiFi-GAN: 2, 3, 5, 7, 11), weight-normed.

    ``(B, 1, L) -> (scores, feature_maps)``: ``len(periods)`` scores ``(B, N_p)``, and per
    period six maps ``(B, C_i, T_i, p)``.
    """

    def __init__(self, periods: Sequence[int] = PERIODS,
                 channels: Sequence[int] = FULL_PERIOD_CHANNELS) -> None:
        super().__init__()
        if len(periods) == 0:
            raise ValueError(f"periods must list at least one period, got {periods!r}")
        self.discriminators = nn.ModuleList(PeriodDiscriminator(p, channels) for p in periods)

    def forward(self, wav: Tensor) -> tuple[Scores, FeatureMaps]:
        """``(B, 1, L)`` -> one score ``(B, N_p)`` and feature-map list per period."""
        _check_waveform(wav)
        scores, features = [], []
        for discriminator in self.discriminators:
            score, maps = discriminator(wav)
            scores.append(score)
            features.append(maps)
        return scores, features


class ScaleDiscriminator(nn.Module):
    """One scale of the multi-scale discriminator: ``(B, 1, L) -> (B, N)`` score.

    Seven grouped 1-D convolutions (kernel and stride from ``SCALE_LAYOUT``, ``groups``),
    then a kernel-3 projection; feature maps are ``(B, C_i, T_i)``. Every ``groups[i]``
    must divide layer ``i``'s input and output channels.
    """

    def __init__(self, channels: Sequence[int] = FULL_SCALE_CHANNELS,
                 groups: Sequence[int] = FULL_SCALE_GROUPS, spectral: bool = False) -> None:
        super().__init__()
        widths = _check_channels("channels", channels, len(SCALE_LAYOUT))
        group_counts = _check_channels("groups", groups, len(SCALE_LAYOUT))
        self.convs = nn.ModuleList()
        in_channels = 1
        for i, ((kernel, stride), out_channels, groups_i) in enumerate(
            zip(SCALE_LAYOUT, widths, group_counts)
        ):
            if in_channels % groups_i or out_channels % groups_i:
                raise ValueError(
                    f"channels[{i}]={out_channels} (input {in_channels}) must be a multiple of "
                    f"groups[{i}]={groups_i}"
                )
            conv = nn.Conv1d(in_channels, out_channels, kernel, stride, groups=groups_i,
                             padding=same_padding(kernel))
            self.convs.append(_norm(conv, spectral))
            in_channels = out_channels
        projection = nn.Conv1d(in_channels, 1, PROJECTION_KERNEL_SIZE, 1,
                               padding=same_padding(PROJECTION_KERNEL_SIZE))
        self.conv_post = _norm(projection, spectral)

    def forward(self, wav: Tensor) -> tuple[Tensor, list[Tensor]]:
        """``(B, 1, L) -> (B, N)`` score and eight feature maps ``(B, C_i, T_i)``."""
        x, features = wav, []
        for conv in self.convs:
            x = F.leaky_relu(conv(x), LRELU_SLOPE)
            features.append(x)
        x = self.conv_post(x)
        features.append(x)
        return x.flatten(1), features  # (B, 1, T) -> (B, T)


class MultiScaleDiscriminator(nn.Module):
    """Scale discriminators on the raw waveform and two average-pooled versions.

    The first (raw) scale uses spectral norm, the others weight norm, as in HiFi-GAN.
    ``(B, 1, L) -> (scores, feature_maps)``: three scores ``(B, N_s)`` and per scale eight
    maps ``(B, C_i, T_i)``.
    """

    def __init__(self, channels: Sequence[int] = FULL_SCALE_CHANNELS,
                 groups: Sequence[int] = FULL_SCALE_GROUPS, num_scales: int = NUM_SCALES) -> None:
        super().__init__()
        check_int("num_scales", num_scales, 1)
        self.discriminators = nn.ModuleList(
            ScaleDiscriminator(channels, groups, spectral=(i == 0)) for i in range(num_scales)
        )
        self.pool = nn.AvgPool1d(POOL_KERNEL_SIZE, POOL_STRIDE, padding=POOL_PADDING)

    def forward(self, wav: Tensor) -> tuple[Scores, FeatureMaps]:
        """``(B, 1, L)`` -> one score ``(B, N_s)`` and feature-map list per scale."""
        _check_waveform(wav)
        scores, features = [], []
        for i, discriminator in enumerate(self.discriminators):
            if i > 0:
                wav = self.pool(wav)  # (B, 1, L) -> (B, 1, L // 2 + 1)
            score, maps = discriminator(wav)
            scores.append(score)
            features.append(maps)
        return scores, features


__all__ = [
    "FULL_PERIOD_CHANNELS", "FULL_SCALE_CHANNELS", "FULL_SCALE_GROUPS", "PERIODS", "SMALL_PERIOD_CHANNELS",
    "SMALL_SCALE_CHANNELS", "MultiPeriodDiscriminator", "MultiScaleDiscriminator",
    "PeriodDiscriminator", "ScaleDiscriminator",
]
