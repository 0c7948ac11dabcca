"""Anti-aliased resampling as BigVGAN does it: Kaiser-windowed sinc low-pass filters.

``kaiser_sinc_filter1d`` (:mod:`upsampler.layers.kaiser`, re-exported here) designs the
filter (12 taps for ratio 2, cutoff ``0.5 / ratio``, half transition width ``0.6 / ratio``,
unit DC gain). ``UpSample1d`` inserts samples with our
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

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from upsampler.capture import is_capturing
from upsampler.layers.antialias_streams import activation_stream, upsample_stream
from upsampler.layers.conv_transpose import ConvTranspose1d
from upsampler.layers.kaiser import (
    CUTOFF_PER_RATIO,
    DOWN_OVERLAP,
    HALF_WIDTH_PER_RATIO,
    POLYPHASE_KERNEL_SIZE,
    POLYPHASE_RATIO,
    UP_OVERLAP,
    block_product,
    default_kernel_size,
    down_block_matrix,
    kaiser_attenuation,
    kaiser_beta,
    kaiser_sinc_filter1d,
    ratio_filter,
    replicate_pad,
    up_block_matrix,
)
from upsampler.layers.snake import in_place_allowed
from upsampler.layers.streaming import Stream, StreamingModule
from upsampler.lengths import check_int

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
        self.register_buffer("filter", ratio_filter(ratio, self.kernel_size))
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


BLOCK = 16  # pairs per block: of 8, 16 and 32 (timed on one thread) 16 was fastest or tied


class Activation1d(StreamingModule):
    """Anti-aliased activation: up x2 -> ``act`` -> down x2, ``(B, C, T) -> (B, C, T)``.

    Submodules ``act``, ``upsample`` (``UpSample1d``) and ``downsample`` (``DownSample1d``)
    as in BigVGAN, so its checkpoint keys load. ``anti_alias=False`` applies ``act`` at the
    base rate instead (the same parameters and buffers; for aliasing comparisons).

    ``polyphase=True`` (the default, used for ratio 2 with 12 taps) computes the same
    numbers without the upsampled signal's zeros, its edge padding or depthwise convs: both
    filters become matrix products over blocks of the signal. Each channel of ``x`` is
    replicate-padded by 5 on the left (and on the right up to whole blocks of ``M`` =
    ``BLOCK`` samples); block ``b`` and the first 5 samples of block ``b + 1`` give, times
    ``up_block`` (:func:`~upsampler.layers.kaiser.up_block_matrix`), ``2M`` samples of the
    upsampled ``y`` in time order, starting at ``y[-5]``. ``act`` runs on them; the 5 samples
    before ``z[0]`` and after ``z[2T - 1]`` are replaced by those two (BigVGAN's replicate
    padding before its down filter); then row ``b`` and the first 10 samples of row
    ``b + 1``, times ``down_block``, give ``M`` outputs::

        x (T) --pad 5 | to blocks--> (rows, M) --2 GEMMs--> (rows, 2M) = y[-5 ..]
        --act, edges--> z --2 GEMMs--> (rows, M) --first T per channel--> (T)

    The blocks of all channels lie in one matrix, each channel one block longer than it
    needs, so the last block of a channel (which reads into the next channel) falls
    beyond the ``T`` outputs kept.
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
        self.block = BLOCK
        self.up_overlap = UP_OVERLAP  # also the left padding of x and the samples before z[0]
        self.down_overlap = DOWN_OVERLAP
        # the block matrices, derived from the filters once (again after every state_dict load)
        up_block, down_block = self.block_matrices()
        self.register_buffer("up_block", up_block, persistent=False)
        self.register_buffer("down_block", down_block, persistent=False)
        self.register_load_state_dict_post_hook(Activation1d._refresh_block_matrices)

    @staticmethod
    def _refresh_block_matrices(module: nn.Module, incompatible_keys: Any) -> None:
        up_block, down_block = module.block_matrices()
        with torch.no_grad():
            module.up_block.copy_(up_block)
            module.down_block.copy_(down_block)

    def block_matrices(self) -> tuple[Tensor, Tensor]:
        """``(M + 5, 2M)`` up and ``(2M + 10, M)`` down block matrices from the filters, or
        ``(1, 1)`` placeholders when the polyphase path does not fit the ratios and sizes."""
        up_filter, down_filter = self.upsample.filter, self.downsample.lowpass.filter
        if not self.polyphase_fits:
            return up_filter.new_zeros(1, 1), down_filter.new_zeros(1, 1)
        return up_block_matrix(up_filter, self.block), down_block_matrix(down_filter, self.block)

    def forward_polyphase(self, x: Tensor) -> Tensor:
        """``(B, C, T) -> (B, C, T)``: the polyphase path (see the class docstring).

        Without autograd or capture the products write into fresh buffers (the down
        product into the padded input's), and the padding and edges are copied in place;
        otherwise every step is out of place (and exports).
        """
        batch, channels, length = x.shape
        block, overlap = self.block, self.up_overlap
        rows = (length + overlap + block - 1) // block + 1  # blocks of the T + 5 pairs, plus one
        fresh = in_place_allowed(x, self.up_block, self.down_block)
        padded = replicate_pad(x, overlap, rows * block - length - overlap, fresh)  # (B, C, rows M)
        blocks = padded.view(-1, block)  # (B, C, rows M) -> (B C rows, M)
        y = block_product(blocks, self.up_block, overlap, fresh)  # (B C rows, 2M)
        y = y.view(batch, channels, -1)  # (B C rows, 2M) -> (B, C, 2 rows M)
        z = self.act(y) if torch.jit.is_scripting() or not fresh else self._act_in_place(y)
        first, last = overlap, 2 * length + overlap - 1  # where z[0] and z[2T - 1] sit
        fresh = fresh and in_place_allowed(z, self.up_block, self.down_block)  # act records?
        if fresh:
            z.narrow(-1, 0, overlap).copy_(z.narrow(-1, first, 1))
            z.narrow(-1, last + 1, overlap).copy_(z.narrow(-1, last, 1))
        else:
            z = torch.cat([
                z.narrow(-1, first, 1).expand(batch, channels, overlap),
                z[..., first : last + 1],
                z.narrow(-1, last, 1).expand(batch, channels, overlap),
                z[..., last + 1 + overlap :],
            ], dim=-1)
        high = z.reshape(-1, 2 * block)  # (B, C, 2 rows M) -> (B C rows, 2M)
        out = block_product(high, self.down_block, self.down_overlap, fresh,
                            blocks if fresh else None)
        # (B C rows, M) -> (B, C, T); contiguous: torch's convs run slower on the strided view
        return out.view(batch, channels, -1)[..., :length].contiguous()

    @torch.jit.unused
    def _act_in_place(self, y: Tensor) -> Tensor:
        """``act`` written into ``y`` where it can (Snake: ``writes_in_place``)."""
        if getattr(self.act, "writes_in_place", False):
            return self.act(y, in_place=True)
        return self.act(y)

    def forward(self, x: Tensor) -> Tensor:
        """``(B, C, T) -> (B, C, T)``."""
        if not self.anti_alias:
            return self.act(x)
        # under export / torch.compile the plain path: the block layout's length arithmetic
        # (whole blocks of M samples) stalls the symbolic shape reasoning of a dynamic export
        if self.polyphase and not is_capturing():
            return self.forward_polyphase(x)
        x = self.upsample(x)
        x = self.act(x)
        return self.downsample(x)

    def new_stream(self) -> Stream:
        return activation_stream(self)

    def extra_repr(self) -> str:
        return f"anti_alias={self.anti_alias}, polyphase={self.polyphase}"


__all__ = [
    "Activation1d", "DownSample1d", "LowPassFilter1d", "UpSample1d", "default_kernel_size",
    "kaiser_attenuation", "kaiser_beta", "kaiser_sinc_filter1d",
]
