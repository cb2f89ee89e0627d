"""The complex layers of beamkernels.nn from this family: pooling, linear, dropout, upsample
(signatures, parameters, init statistics, train/eval, equivalence with the functional ops)."""

import math

import pytest
import torch

import beamkernels.functional as F
from beamkernels import nn as bnn
from tests.helpers import assert_close, crandn


def test_pool_layers_match_functional():
    x = crandn(2, 3, 8, 9)
    assert torch.equal(bnn.ComplexMaxPool2d(2)(x), F.complex_max_pool2d(x, 2))
    y, idx = bnn.ComplexMaxPool2d((2, 3), stride=1, padding=1, dilation=1, return_indices=True, ceil_mode=True)(x)
    y2, idx2 = F.complex_max_pool2d(x, (2, 3), 1, 1, 1, True, True)
    assert torch.equal(y, y2) and torch.equal(idx, idx2)
    assert torch.equal(bnn.ComplexAvgPool2d(3, 2, 1, count_include_pad=False)(x),
                       F.complex_avg_pool2d(x, 3, 2, 1, count_include_pad=False))
    assert torch.equal(bnn.ComplexAdaptiveAvgPool2d((1, None))(x), F.complex_adaptive_avg_pool2d(x, (1, None)))
    assert "output_size=(1, None)" in repr(bnn.ComplexAdaptiveAvgPool2d((1, None)))


@pytest.mark.parametrize("dtype", [torch.complex64, torch.complex128])
def test_linear_layer(dtype):
    m = bnn.ComplexLinear(6, 4, dtype=dtype)
    assert m.weight.dtype == dtype and m.weight.shape == (4, 6) and m.bias.shape == (4,)
    assert torch.equal(m.bias, torch.zeros_like(m.bias))
    x = crandn(3, 6, dtype=dtype)
    assert_close(m(x), x @ m.weight.T + m.bias, dtype=dtype)
    assert bnn.ComplexLinear(6, 4, bias=False).bias is None
    assert "in_features=6, out_features=4, bias=True" in repr(m)
    y = m(x).abs().sum()
    y.backward()
    assert m.weight.grad is not None and m.bias.grad is not None
    with pytest.raises(TypeError, match="dtype must be torch.complex64 or torch.complex128"):
        bnn.ComplexLinear(6, 4, dtype=torch.float32)


def test_linear_complex_he_init_statistics():
    """Rayleigh modulus with sigma = 1/sqrt(fan_in): E|w|^2 = 2/fan_in (the real He rule),
    E|w| = sigma sqrt(pi/2), and a uniform phase."""
    torch.manual_seed(0)
    fan_in = 512
    w = bnn.ComplexLinear(fan_in, 400).weight.detach()
    sigma = 1 / math.sqrt(fan_in)
    assert abs((w.abs() ** 2).mean().item() * fan_in / 2 - 1) < 0.02
    assert abs(w.abs().mean().item() / (sigma * math.sqrt(math.pi / 2)) - 1) < 0.02
    phase = w.angle()
    assert abs(phase.mean().item()) < 0.02 and abs(phase.var().item() / (math.pi ** 2 / 3) - 1) < 0.02
    assert abs(w.mean().abs().item()) < 3 * sigma / math.sqrt(w.numel()) * math.sqrt(2) * 2


def test_dropout_layers_train_eval():
    x = crandn(4, 3, 5, 5) + 2
    m = bnn.ComplexDropout(0.5)
    m.eval()
    assert m(x) is x
    m.train()
    y = m(x)
    assert torch.equal(y.real == 0, y.imag == 0) and (y == 0).any()
    m2 = bnn.ComplexDropout2d(0.5).train()
    z = (m2(x) == 0).flatten(2)
    assert torch.equal(z.any(-1), z.all(-1))
    assert "p=0.5" in repr(m2)
    with pytest.raises(ValueError, match=r"ComplexDropout: argument 'p' must be in \[0, 1\]"):
        bnn.ComplexDropout(2)


def test_upsample_layer_and_sequential():
    x = crandn(2, 3, 4, 5)
    up = bnn.ComplexUpsample(scale_factor=2, mode="bilinear")
    assert torch.equal(up(x), F.complex_upsample(x, scale_factor=2, mode="bilinear"))
    assert "scale_factor=2, mode='bilinear'" in repr(up)
    net = torch.nn.Sequential(bnn.ComplexMaxPool2d(2), bnn.ComplexDropout2d(0.1), torch.nn.Flatten(),
                              bnn.ComplexLinear(3 * 2 * 2, 5))
    out = net(x)
    assert out.shape == (2, 5) and out.dtype == torch.complex64
    out.abs().sum().backward()
    assert net[3].weight.grad is not None


@pytest.mark.parametrize("convert", ["to_complex128", "double", "round_trip"])
def test_model_dtype_conversion(convert):
    # Layers with real tensors next to complex ones (norm statistics, modReLU biases): .to(complex128)
    # keeps the real ones real (float64), .double() takes the complex ones to complex128; the
    # converted model runs and matches the model built in complex128.
    torch.manual_seed(0)

    def build(dtype):
        torch.manual_seed(0)
        return torch.nn.Sequential(
            bnn.ComplexConv2d(2, 3, 3, padding=1, activation="modrelu", dtype=dtype), bnn.ComplexBatchNorm2d(3, dtype=dtype),
            bnn.ModReLU(3, dtype=dtype), bnn.ComplexConv2d(3, 3, 1, dtype=dtype), bnn.ComplexLayerNorm(4, dtype=dtype))

    m = build(torch.complex64)
    if convert == "to_complex128":
        m = m.to(torch.complex128)
    elif convert == "double":
        m = m.double()
    else:
        m = m.to(torch.complex128).float()
    want = torch.complex64 if convert == "round_trip" else torch.complex128
    for name, t in list(m.named_parameters()) + list(m.named_buffers()):
        if t.is_floating_point() or t.is_complex():
            assert t.dtype in (want, want.to_real()), name
            assert t.is_complex() == ("0.weight" == name or "0.bias" == name or "3.weight" == name or "3.bias" == name), name
    x = crandn(2, 2, 4, 4).to(want)
    y = m(x)
    assert y.dtype == want
    ref_model = build(want)
    ref_model.load_state_dict(build(torch.complex64).to(want).state_dict())
    assert_close(y, ref_model(x), rtol=1e-5, atol=1e-5)
