"""Parity oracle: the original BigVGAN generator, written from its published structure.

Independent of ``upsampler``: torch's own ``nn.Conv1d`` / ``nn.ConvTranspose1d`` with padding
``(k - u) // 2``, the legacy ``torch.nn.utils.weight_norm`` (keys ``weight_g`` / ``weight_v``),
and the anti-aliasing filters applied as BigVGAN applies them: replicate-pad, upsample the
whole signal with ``F.conv_transpose1d`` times the ratio, cut both ends, activate, then
replicate-pad and ``F.conv1d`` with stride 2. ``h`` is a BigVGAN ``config.json`` dict.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from hifigan_reference import get_padding, weight_norm

CONFIGS: dict[str, dict[str, Any]] = {
    "base_22k": {
        "num_mels": 80, "upsample_rates": [8, 8, 2, 2], "upsample_kernel_sizes": [16, 16, 4, 4],
        "upsample_initial_channel": 512, "resblock": "1", "resblock_kernel_sizes": [3, 7, 11],
        "resblock_dilation_sizes": [[1, 3, 5], [1, 3, 5], [1, 3, 5]],
        "activation": "snakebeta", "snake_logscale": True,
    },
    "v2_24k_256x": {
        "num_mels": 100, "upsample_rates": [4, 4, 2, 2, 2, 2],
        "upsample_kernel_sizes": [8, 8, 4, 4, 4, 4], "upsample_initial_channel": 1536,
        "resblock": "1", "resblock_kernel_sizes": [3, 7, 11],
        "resblock_dilation_sizes": [[1, 3, 5], [1, 3, 5], [1, 3, 5]],
        "activation": "snakebeta", "snake_logscale": True,
        "use_tanh_at_final": False, "use_bias_at_final": False,
    },
}


def kaiser_sinc_filter1d(cutoff: float, half_width: float, kernel_size: int) -> Tensor:
    even = kernel_size % 2 == 0
    half_size = kernel_size // 2
    delta_f = 4 * half_width
    A = 2.285 * (half_size - 1) * math.pi * delta_f + 7.95
    if A > 50.0:
        beta = 0.1102 * (A - 8.7)
    elif A >= 21.0:
        beta = 0.5842 * (A - 21) ** 0.4 + 0.07886 * (A - 21.0)
    else:
        beta = 0.0
    window = torch.kaiser_window(kernel_size, beta=beta, periodic=False)
    time = torch.arange(-half_size, half_size) + 0.5 if even else torch.arange(kernel_size) - half_size
    filter_ = 2 * cutoff * window * torch.sinc(2 * cutoff * time)
    filter_ /= filter_.sum()
    return filter_.view(1, 1, kernel_size)


class Snake(nn.Module):
    def __init__(self, in_features: int, alpha_logscale: bool = False) -> None:
        super().__init__()
        self.alpha_logscale = alpha_logscale
        init = torch.zeros(in_features) if alpha_logscale else torch.ones(in_features)
        self.alpha = nn.Parameter(init)

    def forward(self, x: Tensor) -> Tensor:
        alpha = self.alpha.unsqueeze(0).unsqueeze(-1)
        if self.alpha_logscale:
            alpha = torch.exp(alpha)
        return x + (1.0 / (alpha + 1e-9)) * torch.pow(torch.sin(x * alpha), 2)


class SnakeBeta(nn.Module):
    def __init__(self, in_features: int, alpha_logscale: bool = False) -> None:
        super().__init__()
        self.alpha_logscale = alpha_logscale
        init = torch.zeros(in_features) if alpha_logscale else torch.ones(in_features)
        self.alpha = nn.Parameter(init.clone())
        self.beta = nn.Parameter(init.clone())

    def forward(self, x: Tensor) -> Tensor:
        alpha = self.alpha.unsqueeze(0).unsqueeze(-1)
        beta = self.beta.unsqueeze(0).unsqueeze(-1)
        if self.alpha_logscale:
            alpha = torch.exp(alpha)
            beta = torch.exp(beta)
        return x + (1.0 / (beta + 1e-9)) * torch.pow(torch.sin(x * alpha), 2)


class LowPassFilter1d(nn.Module):
    def __init__(self, cutoff: float, half_width: float, stride: int, kernel_size: int) -> None:
        super().__init__()
        even = kernel_size % 2 == 0
        self.pad_left = kernel_size // 2 - int(even)
        self.pad_right = kernel_size // 2
        self.stride = stride
        self.register_buffer("filter", kaiser_sinc_filter1d(cutoff, half_width, kernel_size))

    def forward(self, x: Tensor) -> Tensor:
        _, C, _ = x.shape
        x = F.pad(x, (self.pad_left, self.pad_right), mode="replicate")
        return F.conv1d(x, self.filter.expand(C, -1, -1), stride=self.stride, groups=C)


class UpSample1d(nn.Module):
    def __init__(self, ratio: int = 2) -> None:
        super().__init__()
        self.ratio = ratio
        self.kernel_size = int(6 * ratio // 2) * 2
        self.stride = ratio
        self.pad = self.kernel_size // ratio - 1
        self.pad_left = self.pad * self.stride + (self.kernel_size - self.stride) // 2
        self.pad_right = self.pad * self.stride + (self.kernel_size - self.stride + 1) // 2
        self.register_buffer(
            "filter", kaiser_sinc_filter1d(0.5 / ratio, 0.6 / ratio, self.kernel_size)
        )

    def forward(self, x: Tensor) -> Tensor:
        _, C, _ = x.shape
        x = F.pad(x, (self.pad, self.pad), mode="replicate")
        x = self.ratio * F.conv_transpose1d(
            x, self.filter.expand(C, -1, -1), stride=self.stride, groups=C
        )
        return x[..., self.pad_left : -self.pad_right]


class DownSample1d(nn.Module):
    def __init__(self, ratio: int = 2) -> None:
        super().__init__()
        kernel_size = int(6 * ratio // 2) * 2
        self.lowpass = LowPassFilter1d(0.5 / ratio, 0.6 / ratio, ratio, kernel_size)

    def forward(self, x: Tensor) -> Tensor:
        return self.lowpass(x)


class Activation1d(nn.Module):
    def __init__(self, activation: nn.Module) -> None:
        super().__init__()
        self.act = activation
        self.upsample = UpSample1d(2)
        self.downsample = DownSample1d(2)

    def forward(self, x: Tensor) -> Tensor:
        return self.downsample(self.act(self.upsample(x)))


def snake(h: dict[str, Any], channels: int) -> nn.Module:
    cls = Snake if h["activation"] == "snake" else SnakeBeta
    return cls(channels, alpha_logscale=h["snake_logscale"])


class AMPBlock1(nn.Module):
    def __init__(self, h: dict[str, Any], channels: int, kernel_size: int,
                 dilation: Sequence[int]) -> None:
        super().__init__()
        self.convs1 = nn.ModuleList(
            weight_norm(nn.Conv1d(channels, channels, kernel_size, 1, dilation=d,
                                  padding=get_padding(kernel_size, d)))
            for d in dilation
        )
        self.convs2 = nn.ModuleList(
            weight_norm(nn.Conv1d(channels, channels, kernel_size, 1, dilation=1,
                                  padding=get_padding(kernel_size, 1)))
            for _ in dilation
        )
        self.activations = nn.ModuleList(
            Activation1d(snake(h, channels)) for _ in range(2 * len(dilation))
        )

    def forward(self, x: Tensor) -> Tensor:
        acts1, acts2 = self.activations[::2], self.activations[1::2]
        for c1, c2, a1, a2 in zip(self.convs1, self.convs2, acts1, acts2):
            xt = a1(x)
            xt = c1(xt)
            xt = a2(xt)
            xt = c2(xt)
            x = xt + x
        return x


class AMPBlock2(nn.Module):
    def __init__(self, h: dict[str, Any], channels: int, kernel_size: int,
                 dilation: Sequence[int]) -> None:
        super().__init__()
        self.convs = nn.ModuleList(
            weight_norm(nn.Conv1d(channels, channels, kernel_size, 1, dilation=d,
                                  padding=get_padding(kernel_size, d)))
            for d in dilation
        )
        self.activations = nn.ModuleList(Activation1d(snake(h, channels)) for _ in dilation)

    def forward(self, x: Tensor) -> Tensor:
        for c, a in zip(self.convs, self.activations):
            x = c(a(x)) + x
        return x


class BigVGAN(nn.Module):
    """The original ``bigvgan.BigVGAN`` (torch path, no fused CUDA kernel)."""

    def __init__(self, h: dict[str, Any]) -> None:
        super().__init__()
        self.num_kernels = len(h["resblock_kernel_sizes"])
        self.num_upsamples = len(h["upsample_rates"])
        c0 = h["upsample_initial_channel"]
        self.conv_pre = weight_norm(nn.Conv1d(h["num_mels"], c0, 7, 1, padding=3))
        block = AMPBlock1 if h["resblock"] == "1" else AMPBlock2
        self.ups = nn.ModuleList()
        for i, (u, k) in enumerate(zip(h["upsample_rates"], h["upsample_kernel_sizes"])):
            self.ups.append(nn.ModuleList([weight_norm(
                nn.ConvTranspose1d(c0 // 2**i, c0 // 2 ** (i + 1), k, u, padding=(k - u) // 2)
            )]))
        self.resblocks = nn.ModuleList()
        for i in range(len(self.ups)):
            ch = c0 // 2 ** (i + 1)
            for k, d in zip(h["resblock_kernel_sizes"], h["resblock_dilation_sizes"]):
                self.resblocks.append(block(h, ch, k, d))
        self.activation_post = Activation1d(snake(h, ch))
        self.use_bias_at_final = h.get("use_bias_at_final", True)
        self.conv_post = weight_norm(nn.Conv1d(ch, 1, 7, 1, padding=3, bias=self.use_bias_at_final))
        self.use_tanh_at_final = h.get("use_tanh_at_final", True)

    def forward(self, x: Tensor) -> Tensor:
        x = self.conv_pre(x)
        for i in range(self.num_upsamples):
            for up in self.ups[i]:
                x = up(x)
            xs = None
            for j in range(self.num_kernels):
                if xs is None:
                    xs = self.resblocks[i * self.num_kernels + j](x)
                else:
                    xs += self.resblocks[i * self.num_kernels + j](x)
            x = xs / self.num_kernels
        x = self.activation_post(x)
        x = self.conv_post(x)
        if self.use_tanh_at_final:
            return torch.tanh(x)
        return torch.clamp(x, min=-1.0, max=1.0)

    def remove_weight_norm(self) -> None:
        for module in self.modules():
            if hasattr(module, "weight_g"):
                torch.nn.utils.remove_weight_norm(module)
