"""ComplexConv1d / ComplexConv2d / ComplexConvTranspose2d layers: the thesis's "4 real convs"
formulation, torch state_dict compatibility, init statistics, padding modes, errors."""

import math

import pytest
import torch

import beamkernels
from beamkernels import nn as bnn
from beamkernels import reference as ref
from beamkernels import conv_tf32_enabled
from tests.helpers import assert_close, crandn, run_on

TOL = dict(rtol=1e-4, atol=1e-4)


def _tol(device) -> dict:
    """TOL, or TF32's on a GPU (complex64 convs there, ours and torch's, default to TF32 tensor
    cores: ~1e-3 relative per product, sums of <= 27 products of O(1) values here)."""
    if device.type == "cuda" and conv_tf32_enabled():
        return dict(rtol=1e-2, atol=3e-2)
    return TOL


def test_four_real_convs_equivalence(backend, device):
    """The thesis builds a complex conv from two real convs conv_r, conv_i (each with its bias):
    out_r = conv_r(xr) - conv_i(xi), out_i = conv_r(xi) + conv_i(xr). That is ComplexConv2d with
    weight = W_r + i W_i and bias = (b_r - b_i) + i (b_r + b_i) (each real conv adds its bias once
    to both terms it appears in)."""
    torch.manual_seed(1)
    conv_r = torch.nn.Conv2d(3, 5, 3, padding=1, stride=(1, 2), device=device)
    conv_i = torch.nn.Conv2d(3, 5, 3, padding=1, stride=(1, 2), device=device)
    layer = bnn.ComplexConv2d(3, 5, 3, padding=1, stride=(1, 2), device=device)
    with torch.no_grad():
        layer.weight.copy_(torch.complex(conv_r.weight, conv_i.weight))
        layer.bias.copy_(torch.complex(conv_r.bias - conv_i.bias, conv_r.bias + conv_i.bias))
    xr = torch.randn(2, 3, 6, 9, device=device, requires_grad=True)
    xi = torch.randn(2, 3, 6, 9, device=device, requires_grad=True)
    out_r = conv_r(xr) - conv_i(xi)
    out_i = conv_r(xi) + conv_i(xr)
    y = run_on(backend, layer, torch.complex(xr, xi))
    assert_close(y.real, out_r, **_tol(device))
    assert_close(y.imag, out_i, **_tol(device))
    # Gradients: the same real loss through both; dL/dW = dL/dW_r + i dL/dW_i (PyTorch's convention).
    gr, gi = torch.randn_like(out_r), torch.randn_like(out_i)
    loss_real = (out_r * gr + out_i * gi).sum()
    g_real = torch.autograd.grad(loss_real, [xr, xi, conv_r.weight, conv_i.weight, conv_r.bias, conv_i.bias])
    xc = torch.complex(xr.detach(), xi.detach()).requires_grad_(True)
    y = run_on(backend, layer, xc)
    loss = (y.real * gr + y.imag * gi).sum()
    gx, gw, gb = torch.autograd.grad(loss, [xc, layer.weight, layer.bias])
    assert_close(gx.real, g_real[0], **_tol(device))
    assert_close(gx.imag, g_real[1], **_tol(device))
    assert_close(gw.real, g_real[2], **_tol(device))
    assert_close(gw.imag, g_real[3], **_tol(device))
    # b_r enters both parts with +1: dL/db_r = Re gb + Im gb; b_i: dL/db_i = -Re gb + Im gb.
    assert_close(gb.real + gb.imag, g_real[4], **_tol(device))
    assert_close(-gb.real + gb.imag, g_real[5], **_tol(device))


def test_state_dict_from_torch_conv2d(backend, device):
    torch_conv = torch.nn.Conv2d(4, 6, (3, 2), stride=2, padding=1, groups=2, dtype=torch.complex64, device=device)
    layer = bnn.ComplexConv2d(4, 6, (3, 2), stride=2, padding=1, groups=2, device=device)
    layer.load_state_dict(torch_conv.state_dict())
    x = crandn(2, 4, 7, 8, device=device)
    assert_close(run_on(backend, layer, x), torch_conv(x), **_tol(device))
    t1 = torch.nn.Conv1d(3, 5, 3, dtype=torch.complex64, device=device)
    l1 = bnn.ComplexConv1d(3, 5, 3, device=device)
    l1.load_state_dict(t1.state_dict())
    x1 = crandn(2, 3, 9, device=device)
    assert_close(run_on(backend, l1, x1), t1(x1), **_tol(device))
    tt = torch.nn.ConvTranspose2d(3, 4, 3, stride=2, output_padding=1, dtype=torch.complex64, device=device)
    lt = bnn.ComplexConvTranspose2d(3, 4, 3, stride=2, output_padding=1, device=device)
    lt.load_state_dict(tt.state_dict())
    assert_close(run_on(backend, lt, x[:, :3]), tt(x[:, :3]), **_tol(device))


def test_fused_activation_layer(backend, device):
    layer = bnn.ComplexConv2d(3, 5, 3, padding=1, activation="modrelu", activation_bias_init=-0.2, device=device)
    assert layer.activation_bias.shape == (5,) and layer.activation_bias.dtype == torch.float32
    assert torch.all(layer.activation_bias == -0.2)
    x = crandn(2, 3, 6, 7, device=device)
    expected = ref.modrelu(ref.complex_conv2d(x, layer.weight, layer.bias, padding=1), layer.activation_bias)
    assert_close(run_on(backend, layer, x), expected, **_tol(device))
    assert "activation=modrelu" in repr(layer)
    assert bnn.ComplexConv2d(3, 5, 3).activation_bias is None


@pytest.mark.parametrize("mode", ["reflect", "replicate", "circular"])
def test_padding_modes(mode):
    layer = bnn.ComplexConv2d(2, 3, 3, padding=1, padding_mode=mode)
    torch_conv = torch.nn.Conv2d(2, 3, 3, padding=1, padding_mode=mode, dtype=torch.complex64)
    torch_conv.load_state_dict(layer.state_dict())
    x = crandn(2, 2, 5, 6)
    if mode == "circular":
        expected = torch_conv(x)
    else:  # torch has no complex reflect/replicate pad: build the expected value part by part
        pad = [1, 1, 1, 1]
        xp = torch.complex(torch.nn.functional.pad(x.real, pad, mode=mode), torch.nn.functional.pad(x.imag, pad, mode=mode))
        expected = torch.nn.functional.conv2d(xp, layer.weight, layer.bias)
    assert_close(layer(x), expected, **TOL)


@pytest.mark.parametrize("init,fan", [("kaiming", "in"), ("xavier", "both")])
def test_init_statistics(init, fan):
    torch.manual_seed(0)
    layer = bnn.ComplexConv2d(16, 32, 3, init=init)
    w = layer.weight.detach()
    fan_in, fan_out = 16 * 9, 32 * 9
    expected = 2.0 / fan_in if fan == "in" else 2.0 / (fan_in + fan_out)
    power = (w.abs() ** 2).mean().item()
    assert abs(power - expected) < 0.1 * expected  # 4608 samples: ~2% standard error
    # Uniform phase: the mean of e^{i theta} is ~0; Rayleigh modulus: E|w| = sigma sqrt(pi/2).
    assert (w / w.abs()).mean().abs() < 0.05
    sigma = math.sqrt(expected / 2)
    assert abs(w.abs().mean().item() - sigma * math.sqrt(math.pi / 2)) < 0.05 * sigma
    assert torch.count_nonzero(layer.bias) == 0
    with pytest.raises(TypeError, match="complex"):
        beamkernels.nn.init.complex_kaiming_(torch.empty(3, 3))


def test_layer_errors():
    with pytest.raises(TypeError, match="dtype must be complex"):
        bnn.ComplexConv2d(2, 3, 3, dtype=torch.float32)
    with pytest.raises(ValueError, match="groups=2 must divide"):
        bnn.ComplexConv2d(3, 4, 3, groups=2)
    with pytest.raises(ValueError, match="activation must be"):
        bnn.ComplexConv2d(3, 4, 3, activation="relu")
    with pytest.raises(ValueError, match="padding_mode must be one of"):
        bnn.ComplexConv2d(3, 4, 3, padding_mode="mirror")
    with pytest.raises(ValueError, match="init must be one of"):
        bnn.ComplexConv2d(3, 4, 3, init="orthogonal")


def test_complex128_layers():
    layer = bnn.ComplexConv1d(2, 3, 3, dtype=torch.complex128, activation="modrelu")
    assert layer.weight.dtype == torch.complex128 and layer.activation_bias.dtype == torch.float64
    y = layer(crandn(2, 2, 8, dtype=torch.complex128))
    assert y.shape == (2, 3, 6) and y.dtype == torch.complex128


def test_unbatched_input_output_size_and_repr():
    # torch.nn parity: one sample without the batch dim, ConvTranspose2d's output_size, repr of 'valid'.
    torch.manual_seed(0)
    for ours, theirs, x in [
        (bnn.ComplexConv2d(2, 3, 3, padding=1), torch.nn.Conv2d(2, 3, 3, padding=1, dtype=torch.complex64),
         crandn(2, 5, 6)),
        (bnn.ComplexConv1d(2, 3, 3), torch.nn.Conv1d(2, 3, 3, dtype=torch.complex64), crandn(2, 7)),
        (bnn.ComplexConvTranspose2d(2, 3, 3, stride=2, padding=1), torch.nn.ConvTranspose2d(2, 3, 3, stride=2, padding=1,
                                                                                             dtype=torch.complex64),
         crandn(2, 4, 5)),
    ]:
        theirs.load_state_dict(ours.state_dict())
        assert_close(ours(x), theirs(x), rtol=1e-5, atol=1e-5)
    up, tup = ours, theirs
    x = crandn(1, 2, 4, 5)
    for size in [(8, 10), (7, 9), [1, 3, 8, 9]]:
        assert_close(up(x, output_size=size), tup(x, output_size=size), rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match=r"dim 0 must be in \[7, 8\], got 9"):
        up(x, output_size=(9, 9))
    assert "padding=valid" in repr(bnn.ComplexConv2d(2, 3, 3, padding="valid"))


@pytest.mark.parametrize("mode", ["reflect", "replicate", "circular"])
@pytest.mark.parametrize("padding", ["same", "valid"])
def test_string_padding_with_padding_modes(mode, padding):
    # As torch.nn.Conv2d: 'same' pads d (k - 1) per dim in that mode, the odd one on the right.
    torch.manual_seed(0)
    m = bnn.ComplexConv2d(2, 3, (4, 3), padding=padding, dilation=(1, 2), padding_mode=mode)
    x = crandn(2, 2, 6, 7)
    if padding == "same":
        pad = [2, 2, 1, 2]  # (left, right) for W: total 2 * 2; (top, bottom) for H: total 3
        xp = torch.complex(torch.nn.functional.pad(x.real, pad, mode=mode), torch.nn.functional.pad(x.imag, pad, mode=mode))
    else:
        xp = x
    want = torch.nn.functional.conv2d(xp, m.weight, m.bias, dilation=(1, 2))
    y = m(x)
    assert y.shape == want.shape and (padding == "valid" or y.shape[2:] == x.shape[2:])
    assert_close(y, want, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="not supported for strided convolutions"):
        bnn.ComplexConv2d(2, 3, 3, stride=2, padding="same", padding_mode=mode)


@pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning")  # the ops' shape checks, constant per trace
@pytest.mark.parametrize("activation", [None, "modrelu", "crelu"])
def test_jit_trace(activation):
    # The compiled op's save_z must not depend on grad mode while tracing: trace's check reruns
    # under no_grad, and a trace recorded under no_grad is also used for training.
    torch.manual_seed(0)
    m = bnn.ComplexConv2d(3, 4, 3, padding=1, activation=activation, activation_bias_init=-0.3)
    x = crandn(2, 3, 6, 7)
    traced = torch.jit.trace(m, x)  # check_trace on
    with torch.no_grad():
        traced_inference = torch.jit.trace(m, x, check_trace=False)
    xe = x.clone().requires_grad_(True)
    m(xe).abs().sum().backward()
    want = [xe.grad] + [p.grad.clone() for p in m.parameters()]
    for t in (traced, traced_inference):
        m.zero_grad()
        xt = x.clone().requires_grad_(True)
        y = t(xt)
        assert_close(y, m(x), **TOL)
        y.abs().sum().backward()
        for a, b in zip([xt.grad] + [p.grad for p in m.parameters()], want):
            assert_close(a, b, **TOL)


@pytest.mark.parametrize("mode", ["zeros", "reflect", "replicate", "circular"])
def test_input_checked_before_padding(mode):
    m = bnn.ComplexConv2d(3, 4, 3, padding=1, padding_mode=mode)
    with pytest.raises(TypeError, match=r"beamkernels.complex_conv2d: argument 'x' must be a complex tensor"):
        m(torch.randn(2, 3, 8, 8))
    with pytest.raises(TypeError, match=r"beamkernels.complex_conv2d: argument 'x' must be a torch.Tensor, got list"):
        m([1.0, 2.0])
    m1 = bnn.ComplexConv1d(3, 4, 3, padding=1, padding_mode=mode)
    with pytest.raises(TypeError, match=r"beamkernels.complex_conv1d: argument 'x' must be a complex tensor"):
        m1(torch.randn(2, 3, 8))


def test_layer_dtype_whitelist():
    for cls in (bnn.ComplexConv1d, bnn.ComplexConv2d, bnn.ComplexConvTranspose2d):
        for bad in (torch.complex32, torch.float32, torch.float16):
            with pytest.raises(TypeError, match=rf"{cls.__name__}: dtype must be complex \(torch.complex64 or "
                                                rf"torch.complex128\), got {bad}"):
                cls(2, 3, 3, dtype=bad)
