"""What the upstream BigVGAN oracle (tests/upstream.py) lacks: the published configurations.

NVIDIA's ``bigvgan`` wheel ships the model code (``BigVGAN``, AMP blocks, Snake, filters,
``mel_spectrogram``) but none of the ``configs/*.json`` files; ``CONFIGS`` holds the
generator fields of two of them (``bigvgan_base_22khz_80band`` and
``bigvgan_v2_24khz_100band_256x``), written from the release.
"""

from __future__ import annotations

from typing import Any

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
