"""Anti-aliased resampling as BigVGAN does it: Kaiser-windowed sinc low-pass filters.

``kaiser_sinc_filter1d`` designs the filter (12 taps for ratio 2, cutoff ``0.5 / ratio``,
half transition width ``0.6 / ratio``, unit DC gain). ``UpSample1d`` inserts samples with our
``ConvTranspose1d`` (depthwise, stride = ratio, gain = ratio), ``DownSample1d`` low-passes
and keeps every ratio-th sample. Both replicate-pad their input, so no edge falls to zero.
For ratio 2 and 12 taps::

    UpSample1d    x (T)  --replicate pad 5 | 5-->  T + 10
                  --transposed conv, stride 2, 12 taps--> 2 (T + 9) + 12 = 2T + 30
                  --cut 15 | 15-->  2T
    DownSample1d  z (2T) --replicate pad 5 | 6-->  2T + 11  --conv, stride 2-->  T

Buffers are named ``filter`` (``(1, 1, K)``) as in BigVGAN's checkpoints, which store them.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from upsampler.layers.antialias_streams import activation_stream, upsample_stream
from upsampler.layers.conv_transpose import ConvTranspose1d
from upsampler.layers.snake import in_place_allowed
from upsampler.layers.streaming import Stream, StreamingModule
from upsampler.lengths import check_int

TAPS_PER_RATIO = 6  # BigVGAN's kernel_size = int(6 * ratio // 2) * 2: 12 taps at ratio 2
CUTOFF_PER_RATIO = 0.5  # cutoff 0.5 / ratio, in cycles per sample at the high rate
HALF_WIDTH_PER_RATIO = 0.6  # half transition width 0.6 / ratio
# Kaiser's empirical beta for a stop-band attenuation of A dB (Oppenheim & Schafer 7.62)
KAISER_HIGH_A, KAISER_LOW_A = 50.0, 21.0


def default_kernel_size(ratio: int) -> int:
    """BigVGAN's filter length for a resampling ratio: ``int(6 * ratio // 2) * 2``."""
    check_int("ratio", ratio, 1)
    return int(TAPS_PER_RATIO * ratio // 2) * 2


def kaiser_beta(attenuation_db: float) -> float:
    """Kaiser window beta for ``attenuation_db`` of stop-band attenuation."""
    if attenuation_db > KAISER_HIGH_A:
        return 0.1102 * (attenuation_db - 8.7)
    if attenuation_db >= KAISER_LOW_A:
        excess = attenuation_db - KAISER_LOW_A
        return 0.5842 * excess**0.4 + 0.07886 * excess
    return 0.0


def kaiser_attenuation(kernel_size: int, half_width: float) -> float:
    """The attenuation BigVGAN assumes: ``2.285 * (K // 2 - 1) * pi * 4 * half_width + 7.95``."""
    return 2.285 * (kernel_size // 2 - 1) * math.pi * (4 * half_width) + 7.95


def kaiser_sinc_filter1d(cutoff: float, half_width: float, kernel_size: int) -> Tensor:
    """Kaiser-windowed sinc low-pass, ``(1, 1, kernel_size)``, taps summing to 1.

    ``cutoff`` and ``half_width`` are in cycles per sample (0.5 = Nyquist). Even kernels
    put their taps at ``+-0.5, +-1.5, ...`` samples from the centre, odd ones on integers.
    Designed in float32 as BigVGAN designs it, so the taps equal the buffers its
    checkpoints store (a float64 design differs by up to 3e-8); returned in the default dtype.
    """
    check_int("kernel_size", kernel_size, 2)
    if not 0.0 < cutoff <= 0.5:
        raise ValueError(f"cutoff must be in (0, 0.5] cycles per sample, got {cutoff}")
    half_size = kernel_size // 2
    beta = kaiser_beta(kaiser_attenuation(kernel_size, half_width))
    window = torch.kaiser_window(
        kernel_size, periodic=False, beta=beta, dtype=torch.float32, device="cpu"
    )
    if kernel_size % 2 == 0:
        time = torch.arange(-half_size, half_size, dtype=torch.float32, device="cpu") + 0.5
    else:
        time = torch.arange(kernel_size, dtype=torch.float32, device="cpu") - half_size
    taps = 2 * cutoff * window * torch.sinc(2 * cutoff * time)
    taps = taps / taps.sum()
    return taps.to(torch.get_default_dtype()).view(1, 1, kernel_size)


def _ratio_filter(ratio: int, kernel_size: int) -> Tensor:
    return kaiser_sinc_filter1d(
        CUTOFF_PER_RATIO / ratio, HALF_WIDTH_PER_RATIO / ratio, kernel_size
    )


class LowPassFilter1d(nn.Module):
    """Depthwise low-pass with replicate padding, then every ``stride``-th sample.

    Pads ``K // 2 - 1`` left and ``K // 2`` right for even ``K`` (``K // 2`` both sides for
    odd), so ``stride=1`` keeps the length.
    """

    def __init__(
        self, cutoff: float = 0.5, half_width: float = 0.6, stride: int = 1, kernel_size: int = 12
    ) -> None:
        super().__init__()
        self.stride = check_int("stride", stride, 1)
        self.kernel_size = check_int("kernel_size", kernel_size, 2)
        even = int(kernel_size % 2 == 0)
        self.pad_left = kernel_size // 2 - even
        self.pad_right = kernel_size // 2
        self.register_buffer("filter", kaiser_sinc_filter1d(cutoff, half_width, kernel_size))

    def forward(self, x: Tensor) -> Tensor:
        """``(B, C, T * stride) -> (B, C, T)`` (``ceil(L / stride)`` for any length ``L``)."""
        channels = x.shape[1]
        x = F.pad(x, (self.pad_left, self.pad_right), mode="replicate")
        weight = self.filter.expand(channels, -1, -1)  # (1, 1, K) -> (C, 1, K)
        return F.conv1d(x, weight, stride=self.stride, groups=channels)


class UpSample1d(StreamingModule):
    """``ratio`` times more samples through our depthwise ``ConvTranspose1d``, anti-aliased.

    The transposed conv's weight is ``ratio * filter`` for every channel (a buffer kept
    equal to ``filter`` whenever a state_dict is loaded). Its full output on the padded
    input is ``ratio * T + pad_left + pad_right`` samples; ``pad_left`` and ``pad_right`` are
    cut (equal for even ratios, one more on the right for odd ones, as in BigVGAN), so ``T``
    samples always give exactly ``ratio * T``.
    """

    def __init__(self, channels: int, ratio: int = 2, kernel_size: int | None = None) -> None:
        super().__init__()
        self.channels = check_int("channels", channels, 1)
        self.ratio = check_int("ratio", ratio, 1)
        self.kernel_size = default_kernel_size(ratio) if kernel_size is None else kernel_size
        check_int("kernel_size", self.kernel_size, 2)
        self.pad = self.kernel_size // ratio - 1  # replicate padding of the input
        self.pad_left = self.pad * ratio + (self.kernel_size - ratio) // 2
        self.register_buffer("filter", _ratio_filter(ratio, self.kernel_size))
        self.conv = ConvTranspose1d(
            channels, channels, self.kernel_size, stride=ratio, groups=channels, bias=False
        )
        del self.conv.weight
        self.conv.register_buffer("weight", self._conv_weight(), persistent=False)
        self.register_load_state_dict_post_hook(UpSample1d._refresh_conv_weight)

    def _conv_weight(self) -> Tensor:
        """``ratio * filter`` for each channel: ``(1, 1, K) -> (C, 1, K)``."""
        return (self.ratio * self.filter).repeat(self.channels, 1, 1)

    @staticmethod
    def _refresh_conv_weight(module: nn.Module, incompatible_keys: Any) -> None:
        with torch.no_grad():
            module.conv.weight.copy_(module._conv_weight())

    def forward(self, x: Tensor) -> Tensor:
        """``(B, C, T) -> (B, C, T * ratio)``."""
        length = x.shape[-1]
        x = F.pad(x, (self.pad, self.pad), mode="replicate")  # (B, C, T + 2 pad)
        y = self.conv(x)  # (B, C, ratio * T + pad_left + pad_right)
        return y[..., self.pad_left : self.pad_left + length * self.ratio]

    def new_stream(self) -> Stream:
        return upsample_stream(self)

    def extra_repr(self) -> str:
        return f"{self.channels}, ratio={self.ratio}, kernel_size={self.kernel_size}"


class DownSample1d(nn.Module):
    """Low-pass at ``0.5 / ratio`` then keep every ``ratio``-th sample (submodule ``lowpass``)."""

    def __init__(self, ratio: int = 2, kernel_size: int | None = None) -> None:
        super().__init__()
        self.ratio = check_int("ratio", ratio, 1)
        self.kernel_size = default_kernel_size(ratio) if kernel_size is None else kernel_size
        self.lowpass = LowPassFilter1d(
            CUTOFF_PER_RATIO / ratio, HALF_WIDTH_PER_RATIO / ratio, ratio, self.kernel_size
        )

    def forward(self, x: Tensor) -> Tensor:
        """``(B, C, T * ratio) -> (B, C, T)``."""
        return self.lowpass(x)


# The polyphase path is derived for BigVGAN's only setting: ratio 2 both ways, 12 taps.
POLYPHASE_RATIO = 2
POLYPHASE_KERNEL_SIZE = 12
PHASE_TAPS = POLYPHASE_KERNEL_SIZE // POLYPHASE_RATIO  # 6 non-zero taps per output phase
INPUT_PAD = PHASE_TAPS // 2  # replicate padding of x on each side for the 6-tap phase filters
EDGE_PAIRS = PHASE_TAPS // 2  # sample pairs on each side that the down filter reads beyond the signal


class Activation1d(StreamingModule):
    """Anti-aliased activation: up x2 -> ``act`` -> down x2, ``(B, C, T) -> (B, C, T)``.

    Submodules ``act``, ``upsample`` (``UpSample1d``) and ``downsample`` (``DownSample1d``)
    as in BigVGAN, so its checkpoint keys load. ``anti_alias=False`` applies ``act`` at the
    base rate instead (the same parameters and buffers; for aliasing comparisons).

    ``polyphase=True`` (the default, used for ratio 2 with 12 taps) computes the same
    numbers without materialising the upsampled signal's zeros or its edge padding. Write
    ``y`` for the upsampled signal (2T samples) and pair sample ``2j - 1`` with ``2j``:
    both come from the same six inputs ``x[j-3 .. j+2]`` (the odd taps of ``2 * filter`` give
    ``y[2j]``, the even taps ``y[2j-1]``), so two depthwise 6-tap convs (one per member)
    give every pair at the base rate. ``act`` runs on each member; the down filter reads
    pairs ``i-2 .. i+3`` for output ``i`` (its even taps on the odd member, odd taps on the
    even member), again two depthwise 6-tap convs at the base rate, summed::

        x (T) --pad 5|5--> two 6-tap convs --> members y[2j-1], y[2j] for j = -2 .. T+2
        act on each; edge pairs j < 1 and j > T replaced by z[0] (left 3) and z[2T-1] (right 3)
        --> T + 5 pairs --6-tap conv per member, summed--> T samples

    which equals replicate-padding ``z`` before the down filter, as BigVGAN does.
    """

    def __init__(
        self,
        activation: nn.Module,
        channels: int | None = None,
        up_ratio: int = 2,
        down_ratio: int = 2,
        up_kernel_size: int = 12,
        down_kernel_size: int = 12,
        anti_alias: bool = True,
        polyphase: bool = True,
    ) -> None:
        super().__init__()
        if channels is None:
            channels = getattr(activation, "in_features", None)
            if channels is None:
                raise ValueError(
                    f"channels must be given for an activation without in_features, got "
                    f"{type(activation).__name__}"
                )
        self.channels = check_int("channels", channels, 1)
        self.act = activation
        self.upsample = UpSample1d(channels, up_ratio, up_kernel_size)
        self.downsample = DownSample1d(down_ratio, down_kernel_size)
        self.anti_alias = bool(anti_alias)
        self.polyphase_fits = (up_ratio, down_ratio, up_kernel_size, down_kernel_size) == (
            POLYPHASE_RATIO, POLYPHASE_RATIO, POLYPHASE_KERNEL_SIZE, POLYPHASE_KERNEL_SIZE,
        )
        self.polyphase = bool(polyphase) and self.polyphase_fits
        # attributes, not globals, so TorchScript reads them
        self.up_gain = float(up_ratio)
        self.input_pad = INPUT_PAD
        self.edge_pairs = EDGE_PAIRS
        # the phase weights, derived from the filters once (again after every state_dict load)
        up_weight, down_weight = self.phase_weights()
        self.register_buffer("up_phase_weight", up_weight, persistent=False)
        self.register_buffer("down_phase_weight", down_weight, persistent=False)
        self.register_load_state_dict_post_hook(Activation1d._refresh_phase_weights)

    @staticmethod
    def _refresh_phase_weights(module: nn.Module, incompatible_keys: Any) -> None:
        up_weight, down_weight = module.phase_weights()
        with torch.no_grad():
            module.up_phase_weight.copy_(up_weight)
            module.down_phase_weight.copy_(down_weight)

    def phase_weights(self) -> tuple[Tensor, Tensor]:
        """The up weights ``(2, C, 1, 6)`` (member 0, the odd taps; member 1, the even taps)
        and the down weights ``(2, C, 1, 6)`` (for member 0, for member 1), from ``filter``."""
        up = self.upsample.filter.reshape(-1).flip(0) * self.up_gain  # taps 11 .. 0
        up_pair = torch.stack([up[1::2], up[0::2]])  # (2, 6): taps 10, 8 .. 0 and 11, 9 .. 1
        down = self.downsample.lowpass.filter.reshape(-1)
        down_pair = torch.stack([down[0::2], down[1::2]])  # (2, 6): taps 0, 2 .. 10 and 1 .. 11
        up_weight = up_pair.unsqueeze(1).repeat(1, self.channels, 1).unsqueeze(2)
        down_weight = down_pair.unsqueeze(1).repeat(1, self.channels, 1).unsqueeze(2)
        return up_weight.contiguous(), down_weight.contiguous()  # (2, 6) -> (2, C, 1, 6)

    def forward_polyphase(self, x: Tensor) -> Tensor:
        """``(B, C, T) -> (B, C, T)``: the polyphase path (see the class docstring).

        Each member is its own depthwise conv (one input, one output per channel): CPU
        kernels run those several times faster than one grouped conv with two outputs
        (or two inputs) per channel.
        """
        batch, channels, length = x.shape
        edge = self.edge_pairs
        # pad so the up convs give pairs j = -2 .. T + 2 (T + 5), the down convs' whole input
        x = F.pad(x, (self.input_pad + edge - 1,) * 2, mode="replicate")  # (B, C, T + 10)
        up, down = self.up_phase_weight, self.down_phase_weight
        odd = self.act(F.conv1d(x, up[0], groups=channels))  # y[2j - 1], (B, C, T + 5)
        even = self.act(F.conv1d(x, up[1], groups=channels))  # y[2j]
        # pair j sits at index j + 2: z[0] is even[2], z[2T - 1] is odd[T + 2]
        first = even[:, :, edge - 1 : edge].expand(batch, channels, edge)
        last = odd[:, :, length + edge - 1 : length + edge].expand(batch, channels, edge)
        if in_place_allowed(odd, even, down):
            first, last = first.clone(), last.clone()  # the edge slots overlap their sources
            for member in (odd, even):
                member[:, :, :edge].copy_(first)
                member[:, :, length + edge - 1 :].copy_(last)
            out = F.conv1d(odd, down[0], groups=channels)  # (B, C, T + 5) -> (B, C, T)
            return out.add_(F.conv1d(even, down[1], groups=channels))
        inner = slice(edge, length + edge - 1)
        odd = torch.cat([first, odd[:, :, inner], last], dim=-1)
        even = torch.cat([first, even[:, :, inner], last], dim=-1)
        return F.conv1d(odd, down[0], groups=channels) + F.conv1d(even, down[1], groups=channels)

    def forward(self, x: Tensor) -> Tensor:
        """``(B, C, T) -> (B, C, T)``."""
        if not self.anti_alias:
            return self.act(x)
        if self.polyphase:
            return self.forward_polyphase(x)
        x = self.upsample(x)
        x = self.act(x)
        return self.downsample(x)

    def new_stream(self) -> Stream:
        return activation_stream(self)

    def extra_repr(self) -> str:
        return f"anti_alias={self.anti_alias}, polyphase={self.polyphase}"
