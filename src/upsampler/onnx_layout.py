"""Old import path of :mod:`upsampler.export.onnx_layout`, kept because the README names it."""

from upsampler.export.onnx_layout import (
    CHANNEL_BLOCK,
    BlockedMRF,
    BlockedResidualBlock,
    Conv1dAs2d,
    IdentityConv2d,
    blocked_channels,
    with_2d_convs,
    with_blocked_residuals,
)

__all__ = [
    "CHANNEL_BLOCK",
    "BlockedMRF",
    "BlockedResidualBlock",
    "Conv1dAs2d",
    "IdentityConv2d",
    "blocked_channels",
    "with_2d_convs",
    "with_blocked_residuals",
]
