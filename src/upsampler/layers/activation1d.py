"""BigVGAN's anti-aliased activation: up x2 -> activation -> down x2, with a fast CPU path.

The modules it is built from (``UpSample1d``, ``DownSample1d``, BigVGAN's Kaiser-sinc
filters) live in :mod:`upsampler.layers.antialias`; this module adds ``Activation1d`` and
its two polyphase forms: block matrix products in eager, depthwise convs per phase under
export, tracing and ``torch.compile``.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from upsampler.conv_transpose.capture import is_capturing
from upsampler.layers.antialias import DownSample1d, UpSample1d
from upsampler.layers.kaiser import (
    DOWN_OVERLAP,
    POLYPHASE_KERNEL_SIZE,
    POLYPHASE_RATIO,
    UP_OVERLAP,
    block_product,
    down_block_matrix,
    phase_weights,
    replicate_pad,
    up_block_matrix,
)
from upsampler.layers.snake import in_place_allowed
from upsampler.streaming import Stream, StreamingModule
from upsampler.streaming.resamplers import activation_stream
from upsampler.lengths import check_int

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
        z = self._act_in_place(y) if fresh else self.act(y)
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

    def forward_phases(self, x: Tensor) -> Tensor:
        """``(B, C, T) -> (B, C, T)``: the same numbers as depthwise 6-tap convs per phase
        (:func:`~upsampler.layers.kaiser.phase_weights`), out of place: the form that
        export, tracing and ``torch.compile`` see (the block layout's arithmetic on the
        length stalls a dynamic export, and tracing would fix the block count)::

            x --pad 5|5--> two 6-tap convs --> pairs y[2j-1], y[2j] for j = -2 .. T+2
            --act, 3 edge pairs each side set to z[0] / z[2T-1]--> one 6-tap conv per member,
            summed --> T samples
        """
        batch, channels, length = x.shape
        edge = (self.up_overlap + 1) // 2  # pairs the down filter reads beyond each end
        up, down = phase_weights(self.upsample.filter, self.downsample.lowpass.filter,
                                 channels, float(self.upsample.ratio))
        x = F.pad(x, [self.up_overlap, self.up_overlap], mode="replicate")  # (B, C, T + 10)
        odd = self.act(F.conv1d(x, up[0], groups=channels))  # y[2j - 1], (B, C, T + 5)
        even = self.act(F.conv1d(x, up[1], groups=channels))  # y[2j]
        # pair j sits at index j + 2: z[0] is even[2], z[2T - 1] is odd[T + 2]
        first = even[:, :, edge - 1 : edge].expand(batch, channels, edge)
        last = odd[:, :, length + edge - 1 : length + edge].expand(batch, channels, edge)
        odd = torch.cat([first, odd[:, :, edge : length + edge - 1], last], dim=-1)
        even = torch.cat([first, even[:, :, edge : length + edge - 1], last], dim=-1)
        return F.conv1d(odd, down[0], groups=channels) + F.conv1d(even, down[1], groups=channels)

    def _act_in_place(self, y: Tensor) -> Tensor:
        """``act`` written into ``y`` where it can (Snake: ``writes_in_place``)."""
        if getattr(self.act, "writes_in_place", False):
            return self.act(y, in_place=True)
        return self.act(y)

    def forward(self, x: Tensor) -> Tensor:
        """``(B, C, T) -> (B, C, T)``."""
        if not self.anti_alias:
            return self.act(x)
        if self.polyphase:
            return self.forward_phases(x) if is_capturing() else self.forward_polyphase(x)
        x = self.upsample(x)
        x = self.act(x)
        return self.downsample(x)

    def new_stream(self) -> Stream:
        return activation_stream(self)

    def extra_repr(self) -> str:
        return f"anti_alias={self.anti_alias}, polyphase={self.polyphase}"


__all__ = ["Activation1d"]
