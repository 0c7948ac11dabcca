"""``torch.compile(fullgraph=True)`` captures the layer and a HiFi-GAN generator whole.

Compiling takes tens of seconds on two cores, so the models are as small as still
exercises every stage: one tiny transposed layer (forward and backward) and a two-stage
generator of width 8 with one residual branch.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from upsampler import ConvTranspose1d, HiFiGANGenerator

TINY_GENERATOR = dict(
    resblock="2", upsample_rates=(4, 3), upsample_kernel_sizes=(8, 5),
    upsample_initial_channel=8, resblock_kernel_sizes=(3,), resblock_dilation_sizes=((1, 2),),
)


def test_compiled_layer_equals_torch_forward_and_backward() -> None:
    torch._dynamo.reset()
    layer = ConvTranspose1d(4, 3, 5, stride=3, padding=1, output_padding=1, dilation=2).double()
    compiled = torch.compile(layer, fullgraph=True, dynamic=False)
    x = torch.randn(2, 4, 9, dtype=torch.float64, requires_grad=True)
    out = compiled(x)
    expected = F.conv_transpose1d(x, layer.weight, layer.bias, 3, 1, 1, 1, 2)
    torch.testing.assert_close(out, expected)
    grad_output = torch.randn_like(expected)
    got = torch.autograd.grad(out, (x, layer.weight, layer.bias), grad_output)
    want = torch.autograd.grad(expected, (x, layer.weight, layer.bias), grad_output)
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w)


def test_compiled_generator_equals_eager_without_graph_breaks() -> None:
    torch._dynamo.reset()
    torch.manual_seed(0)
    model = HiFiGANGenerator(**TINY_GENERATOR).eval()
    model.remove_weight_norm()
    compiled = torch.compile(model, fullgraph=True, dynamic=False)  # fullgraph: a break raises
    mel = torch.randn(1, model.num_mels, 6)
    with torch.no_grad():
        out = compiled(mel)
        assert out.shape == (1, 1, 6 * 12)
        torch.testing.assert_close(out, model(mel))
