"""load_bigvgan against NVIDIA's official ``BigVGAN`` (tests/upstream.py), torch path.

Reduced widths (the structure is the point, not real weights): a base-like config (hop 256,
no ``use_tanh_at_final`` / ``use_bias_at_final`` keys, as v1 files have none) under both
activations with ``snake_logscale`` on and off, AMPBlock2, and a v2-like one (six stages)
with ``use_tanh_at_final`` / ``use_bias_at_final`` both ways. Upstream's random weights get
gains apart from ``||v||`` and every Snake ``alpha`` / ``beta`` moved off its initial value;
its state_dict is saved as BigVGAN releases it (``{"generator": state_dict}``) and read by
``load_bigvgan``; outputs agree to 1e-5 with weight norm kept and folded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

import upstream
from upsampler import load_bigvgan

TOLERANCE = 1e-5
FRAMES = 5
GAIN_SPREAD = (0.5, 1.5)  # gains drawn apart from ||v|| so swapped or ignored g/v would show
SNAKE_SHIFT = 0.5  # alpha / beta moved by up to this from 1 (linear) or 0 (log scale)
POST_GAIN = 30.0  # lifts the random network's output so tanh / clamp are exercised

BASE_LIKE: dict[str, Any] = {
    "num_mels": 80, "upsample_rates": [8, 8, 2, 2], "upsample_kernel_sizes": [16, 16, 4, 4],
    "upsample_initial_channel": 32, "resblock": "1", "resblock_kernel_sizes": [3, 7, 11],
    "resblock_dilation_sizes": [[1, 3, 5], [1, 3, 5], [1, 3, 5]],
}
V2_LIKE: dict[str, Any] = {
    "num_mels": 100, "upsample_rates": [4, 4, 2, 2, 2, 2],
    "upsample_kernel_sizes": [8, 8, 4, 4, 4, 4], "upsample_initial_channel": 64,
    "resblock": "1", "resblock_kernel_sizes": [3, 7, 11],
    "resblock_dilation_sizes": [[1, 3, 5], [1, 3, 5], [1, 3, 5]],
    "activation": "snakebeta", "snake_logscale": True,
}
CASES: dict[str, dict[str, Any]] = {
    **{f"base_{act}_log{int(log)}": {**BASE_LIKE, "activation": act, "snake_logscale": log}
       for act in ("snake", "snakebeta") for log in (False, True)},
    "base_ampblock2": {**BASE_LIKE, "resblock": "2", "resblock_dilation_sizes": [[1, 3]] * 3,
                       "activation": "snake", "snake_logscale": True},
    **{f"v2_tanh{int(tanh)}_bias{int(bias)}": {**V2_LIKE, "use_tanh_at_final": tanh,
                                               "use_bias_at_final": bias}
       for tanh in (True, False) for bias in (True, False)},
}


@pytest.fixture(autouse=True)
def one_thread():
    """One intra-op thread: these small models are hundreds of tiny ops, which two threads
    on a loaded 2-core machine spend spin-waiting on each other."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def upstream_generator(config: dict[str, Any], seed: int = 0) -> nn.Module:
    """NVIDIA's BigVGAN with random weights, gains and Snake parameters off their init."""
    torch.manual_seed(seed)
    generator = upstream.bigvgan_generator(config)
    with torch.no_grad():
        for key, tensor in generator.state_dict().items():
            if key.endswith("weight_g"):
                tensor.mul_(torch.empty_like(tensor).uniform_(*GAIN_SPREAD))
            elif key.endswith(("alpha", "beta")):
                tensor.add_(torch.empty_like(tensor).uniform_(-SNAKE_SHIFT, SNAKE_SHIFT))
            elif key.endswith("bias"):
                tensor.normal_(0.0, 0.1)
        generator.conv_post.weight_g.mul_(POST_GAIN)
    return generator.eval()


def max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return (a - b).abs().max().item()


@pytest.mark.parametrize("name", list(CASES))
def test_load_bigvgan_matches_nvidias_bigvgan(tmp_path: Path, name: str) -> None:
    config = CASES[name]
    theirs = upstream_generator(config)
    snake = theirs.activation_post.act
    init = 0.0 if config["snake_logscale"] else 1.0
    assert (snake.alpha != init).all()  # moved off the init value
    assert hasattr(snake, "beta") == (config["activation"] == "snakebeta")
    path = tmp_path / "bigvgan_generator.pt"
    torch.save({"generator": theirs.state_dict()}, path)
    ours = load_bigvgan(path, config)
    assert ours.use_tanh_at_final == config.get("use_tanh_at_final", True)
    assert (ours.conv_post.bias is not None) == config.get("use_bias_at_final", True)
    mel = torch.randn(2, config["num_mels"], FRAMES)
    with torch.no_grad():
        expected = theirs(mel)
        assert expected.shape == (2, 1, FRAMES * 256)
        assert expected.abs().max() > 0.05 and expected.std() > 0.01  # not a flat output
        if not config.get("use_tanh_at_final", True):
            assert (expected.abs() == 1.0).any()  # the clamp is exercised
        assert max_diff(ours(mel), expected) <= TOLERANCE
        ours.remove_weight_norm()
        upstream.remove_weight_norm(theirs)
        folded = theirs(mel)
        assert max_diff(ours(mel), folded) <= TOLERANCE
