"""Export forms of our modules that onnxruntime's CPU kernels run in their blocked layout.

onnxruntime (``ORT_ENABLE_ALL``, x86) runs every 2-D ``Conv`` whose channel counts are
multiples of its block (16 with AVX-512, 8 with AVX2) on tensors stored in channel blocks
("NCHWc"). A tensor stays blocked from one such convolution to the next only through the
ops its layout pass knows: a ``LeakyRelu`` right after a ``Conv`` (fused into it), ``Add``
of two blocked tensors (folded into the convolution that makes one of them), ``Relu``,
``Concat``. Anything else gets a ``ReorderOutput`` before it and a ``ReorderInput`` after.

Two steps write a HiFi-GAN generator so its residual blocks stay blocked end to end:

- :func:`with_2d_convs` writes every plain ``nn.Conv1d`` as a 2-D convolution over a
  height-1 image (:class:`Conv1dAs2d`); the layout pass takes no 1-D convolution.
- :func:`with_blocked_residuals` runs each multi-receptive-field fusion (MRF) of
  ``ResBlock1`` / ``ResBlock2`` blocks on ``(B, C, 1, T)`` images, so the activations and
  residual adds between its convolutions see the images too, and writes the two ops the
  layout pass would stop at as convolutions it fuses: the block's input enters through an
  identity depthwise 1x1 convolution (so the residual adds have two blocked inputs), and the
  ``LeakyReLU`` that opens each residual unit (it follows an add, not a convolution) becomes
  ``leaky_relu(identity_conv(x))``. Multiplying by 1.0 changes no number.

On HiFi-GAN V1 this takes the runtime's optimised graph from 66 ``ReorderInput`` and 74
``ReorderOutput`` nodes to 6 of each (one pair around each MRF, conv_pre and conv_post) and
from 69 standalone ``LeakyRelu`` nodes to 5; at 1 thread onnxruntime then spends about 10 %
less CPU time on V1 and 6 % less on V3 (2 s of audio).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from upsampler.layers.resblocks import ResidualBlock
from upsampler.layers.upsample_block import MRF

# onnxruntime blocks channels by 16 (AVX-512) or 8 (AVX2): a multiple of 16 suits both
CHANNEL_BLOCK = 16
HEIGHT_AXIS = 2  # (B, C, T) -> (B, C, 1, T)


class Conv1dAs2d(nn.Module):
    """A plain ``nn.Conv1d`` computed as a 2-D convolution over a height-1 image.

    Same numbers; the ONNX export writes it as a 4-D ``Conv``. onnxruntime's CPU layout
    optimiser (blocked NCHWc kernels, on at ``ORT_ENABLE_ALL``) only takes 2-D convolutions:
    on HiFi-GAN V1 (2 threads, 2 s of audio) the graph runs about 17 % faster this way than
    with 3-D ``Conv`` nodes.
    """

    def __init__(self, conv: nn.Conv1d) -> None:
        super().__init__()
        if conv.padding_mode != "zeros" or isinstance(conv.padding, str):
            raise ValueError(f"conv must have numeric zero padding, got {conv}")
        self.weight = nn.Parameter(conv.weight.detach().unsqueeze(HEIGHT_AXIS),
                                   requires_grad=False)
        self.bias = (None if conv.bias is None
                     else nn.Parameter(conv.bias.detach(), requires_grad=False))
        self.stride = (1, conv.stride[0])
        self.padding = (0, int(conv.padding[0]))
        self.dilation = (1, conv.dilation[0])
        self.groups = conv.groups

    @property
    def in_channels(self) -> int:
        return self.weight.shape[1] * self.groups

    @property
    def out_channels(self) -> int:
        return self.weight.shape[0]

    def forward(self, x: Tensor) -> Tensor:
        """``(B, C_in, T) -> (B, C_out, T_out)``, as ``nn.Conv1d``; a height-1 image
        ``(B, C_in, 1, T)`` gives ``(B, C_out, 1, T_out)``."""
        image = x if x.dim() == 4 else x.unsqueeze(HEIGHT_AXIS)  # (B, C_in, 1, T)
        out = F.conv2d(image, self.weight, self.bias, self.stride, self.padding, self.dilation,
                       self.groups)
        return out if x.dim() == 4 else out.squeeze(HEIGHT_AXIS)


def with_2d_convs(module: nn.Module) -> nn.Module:
    """``module`` with every plain ``nn.Conv1d`` (exact type) replaced by :class:`Conv1dAs2d`.

    Changes ``module`` in place and returns it; subclasses of ``nn.Conv1d`` (resize and
    subpixel upsamplers, whose forward does more) and functional convolutions stay as they are.
    """
    for name, child in module.named_children():
        if type(child) is nn.Conv1d and child.padding_mode == "zeros" \
                and not isinstance(child.padding, str):
            setattr(module, name, Conv1dAs2d(child))
        else:
            with_2d_convs(child)
    return module


class IdentityConv2d(nn.Module):
    """A depthwise 1x1 convolution with weight 1.0 and no bias: ``(B, C, 1, T) -> same``.

    Returns its input's numbers; in onnxruntime it is a blocked convolution, so its output
    is blocked and an activation after it is fused into it.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.channels = channels
        self.register_buffer("weight", torch.ones(channels, 1, 1, 1))

    def forward(self, x: Tensor) -> Tensor:
        """``(B, C, 1, T) -> (B, C, 1, T)``, the same values."""
        return F.conv2d(x, self.weight, None, 1, 0, 1, self.channels)


class BlockedResidualBlock(nn.Module):
    """A ``ResidualBlock`` on ``(B, C, 1, T)`` images, each unit's opening activation
    applied after an :class:`IdentityConv2d`: the block's units, in order, same numbers."""

    def __init__(self, block: ResidualBlock, channels: int) -> None:
        super().__init__()
        self.block = block
        self.identity = IdentityConv2d(channels)

    def forward(self, x: Tensor) -> Tensor:
        """``(B, C, 1, T) -> (B, C, 1, T)``: for each unit, ``x = ops(x) + x``."""
        for ops in self.block.units():
            xt = ops[0](self.identity(x))
            for op in ops[1:]:
                xt = op(xt)
            x = xt + x
        return x


class BlockedMRF(nn.Module):
    """An MRF of :class:`BlockedResidualBlock` run on a height-1 image: ``(B, C, T) ->
    (B, C, T)``, the MRF's numbers (its own ``forward`` sums and averages the images)."""

    def __init__(self, mrf: MRF, channels: int) -> None:
        super().__init__()
        for index, block in enumerate(mrf.resblocks):
            mrf.resblocks[index] = BlockedResidualBlock(block, channels)
        self.mrf = mrf
        self.identity = IdentityConv2d(channels)

    def forward(self, x: Tensor) -> Tensor:
        """``(B, C, T) -> (B, C, T)``."""
        image = self.identity(x.unsqueeze(HEIGHT_AXIS))  # (B, C, T) -> (B, C, 1, T)
        return self.mrf(image).squeeze(HEIGHT_AXIS)  # (B, C, 1, T) -> (B, C, T)


def blocked_channels(mrf: nn.Module) -> int:
    """The channel count of ``mrf`` if :class:`BlockedMRF` applies to it, else 0.

    It applies to an :class:`MRF` whose blocks are ``ResidualBlock`` units made only of
    ``LeakyReLU`` and same-width, ungrouped :class:`Conv1dAs2d` with a multiple of
    ``CHANNEL_BLOCK`` channels (other widths are not blocked by the runtime, and the
    identity convolutions would only add work).
    """
    if type(mrf) is not MRF:
        return 0
    widths = set()
    for block in mrf.resblocks:
        if not isinstance(block, ResidualBlock):
            return 0
        for ops in block.units():
            if not ops or not isinstance(ops[0], nn.LeakyReLU):
                return 0
            for op in ops:
                if isinstance(op, Conv1dAs2d) and op.groups == 1:
                    widths.update((op.in_channels, op.out_channels))
                elif not isinstance(op, nn.LeakyReLU):
                    return 0
    if len(widths) != 1:
        return 0
    (channels,) = widths
    return channels if channels % CHANNEL_BLOCK == 0 else 0


def with_blocked_residuals(module: nn.Module) -> nn.Module:
    """``module`` with every MRF that :func:`blocked_channels` accepts wrapped in
    :class:`BlockedMRF`; call after :func:`with_2d_convs`. Changes ``module`` in place
    and returns it; outputs are unchanged."""
    for name, child in module.named_children():
        channels = blocked_channels(child)
        if channels:
            setattr(module, name, BlockedMRF(child, channels))
        else:
            with_blocked_residuals(child)
    return module


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
