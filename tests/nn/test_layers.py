"""The complex layers of beamkernels.nn from this family: pooling, linear, dropout, upsample
(signatures, parameters, init statistics, train/eval, equivalence with the functional ops)."""

import math

import pytest
import torch

import beamkernels
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


def _mixed_model(dtype=torch.complex64):
    torch.manual_seed(0)
    return torch.nn.Sequential(
        bnn.ComplexConv2d(2, 3, 3, padding=1, activation="modrelu", activation_bias_init=-0.1, dtype=dtype),
        bnn.ComplexBatchNorm2d(3, dtype=dtype), bnn.ModReLU(3, -0.1, dtype=dtype), bnn.ComplexConv2d(3, 3, 1, dtype=dtype),
        bnn.ComplexLayerNorm(4, dtype=dtype), bnn.NaiveComplexBatchNorm2d(3, dtype=dtype), torch.nn.Flatten(),
        bnn.ComplexLinear(48, 5, dtype=dtype))


@pytest.mark.parametrize("src,target", [(torch.complex64, torch.float64), (torch.complex128, torch.float32),
                                        (torch.complex128, torch.float64)])
def test_to_real_dtype_keeps_imaginary_parts(src, target):
    # torch's t.to(float64) drops the imaginary part of a complex tensor: a real target must take
    # the complex tensors straight to its complex counterpart (here through a whole Sequential).
    m = _mixed_model(src).eval()
    with torch.no_grad():
        for p in m.parameters():
            p.add_(0.1 * torch.randn_like(p))  # nonzero imaginary parts everywhere (biases start at 0)
    before = {k: v.clone() for k, v in m.state_dict().items()}
    m.to(target)
    want = target.to_complex()
    for k, v in m.state_dict().items():
        if v.is_complex():
            assert v.dtype == want, k
        elif v.is_floating_point():
            assert v.dtype == target, k
        assert_close(v.to(before[k].dtype), before[k], rtol=1e-6, atol=1e-7, msg=k)  # Im kept
    x = crandn(2, 2, 4, 4, dtype=src)
    ref_model = _mixed_model(src).eval()
    ref_model.load_state_dict(before)
    assert_close(m(x.to(want)).to(src), ref_model(x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("convert", [lambda m: m.half(), lambda m: m.bfloat16(), lambda m: m.to(torch.float16),
                                     lambda m: m.to(torch.complex32)], ids=["half", "bfloat16", "to_float16",
                                                                           "to_complex32"])
def test_unsupported_dtype_conversion_is_refused(convert):
    for m in [_mixed_model(), bnn.ComplexConv2d(2, 3, 3), bnn.ComplexLinear(3, 2), bnn.ModReLU(3)]:
        before = {k: v.dtype for k, v in m.state_dict().items()}
        with pytest.raises(TypeError, match=r"cannot convert to torch\.\w+: beamkernels layers run in complex64 / "
                                            r"complex128 \(convert with \.float\(\)"):
            convert(m)
        # the first beamkernels layer refuses before converting anything of its own
        first = m[0] if isinstance(m, torch.nn.Sequential) else m
        assert all(t.dtype == before[("0." if first is not m else "") + k] for k, t in first.state_dict().items())


def test_constructor_dtypes_are_checked():
    for make in [lambda d: bnn.ModReLU(3, dtype=d), lambda d: bnn.ComplexBatchNorm2d(3, dtype=d),
                 lambda d: bnn.ComplexLayerNorm(3, dtype=d), lambda d: bnn.NaiveComplexBatchNorm2d(3, dtype=d)]:
        for bad in (torch.complex32, torch.float16, torch.bfloat16, torch.int64):
            with pytest.raises(TypeError, match="dtype must be torch.complex64 or torch.complex128"):
                make(bad)
        assert make(torch.complex128).weight.dtype == torch.float64 if hasattr(make(None), "weight") else True
        assert all(t.dtype == torch.float64 for t in make(torch.float64).parameters())


def _functorch_layers():
    return [
        ("conv1d", lambda: bnn.ComplexConv1d(3, 4, 3, padding=1), (3, 7)),
        ("conv2d", lambda: bnn.ComplexConv2d(3, 4, 3, padding=1), (3, 5, 6)),
        ("conv2d-modrelu", lambda: bnn.ComplexConv2d(3, 4, 3, activation="modrelu", activation_bias_init=-0.3), (3, 5, 6)),
        ("conv2d-crelu", lambda: bnn.ComplexConv2d(3, 4, 3, activation="crelu"), (3, 5, 6)),
        ("conv-transpose2d", lambda: bnn.ComplexConvTranspose2d(3, 4, 2, stride=2, activation="cardioid"), (3, 4, 5)),
        ("crelu", lambda: bnn.CReLU(), (3, 4, 5)),
        ("zrelu", lambda: bnn.ZReLU(), (3, 4, 5)),
        ("cardioid", lambda: bnn.Cardioid(), (3, 4, 5)),
        ("modrelu", lambda: bnn.ModReLU(3, -0.3), (3, 4, 5)),
        ("max-pool", lambda: bnn.ComplexMaxPool2d(2), (3, 4, 6)),
        ("batch-norm-eval", lambda: bnn.ComplexBatchNorm2d(3).eval(), (3, 4, 5)),
        ("layer-norm", lambda: bnn.ComplexLayerNorm(5), (3, 4, 5)),
        ("linear", lambda: bnn.ComplexLinear(5, 2), (3, 5)),
    ]


@pytest.mark.parametrize("name,make,shape", _functorch_layers(), ids=[n for n, _, _ in _functorch_layers()])
def test_torch_func_grad_and_per_sample_grads(name, make, shape):
    # torch.func.grad / vmap(grad) with the default backend (the compiled ops' autograd has no
    # functorch rules: the ops take the reference there) vs autograd on the reference backend.
    from torch.func import functional_call, grad, vmap

    torch.manual_seed(0)
    m = make()
    if name == "batch-norm-eval":  # non-trivial running statistics
        with torch.no_grad():
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.copy_(torch.tensor([1.5, 0.3, 0.8]))
    params = {k: v.detach() for k, v in m.named_parameters()}
    buffers = dict(m.named_buffers())
    x = crandn(2, *shape)

    def loss(p, xs):
        return (functional_call(m, (p, buffers), (xs,)).abs() ** 2).sum()

    g_x = grad(loss, argnums=1)(params, x)
    g_p = grad(loss)(params, x) if params else {}
    per_sample = vmap(grad(loss, argnums=(0, 1)), in_dims=(None, 0))(params, x.unsqueeze(1))
    with beamkernels.use_backend("reference"):
        for i in range(-1, x.shape[0]):  # -1: the whole batch, then each sample
            xs = (x if i < 0 else x[i:i + 1]).clone().requires_grad_(True)
            ps = {k: v.clone().requires_grad_(True) for k, v in params.items()}
            want = torch.autograd.grad(loss(ps, xs), [xs] + list(ps.values()))
            got = [g_x] + [g_p[k] for k in ps] if i < 0 else [per_sample[1][i]] + [per_sample[0][k][i] for k in ps]
            for a, b in zip(got, want):
                assert_close(a.reshape(b.shape), b, rtol=1e-4, atol=1e-4, msg=f"{name} sample {i}")


@pytest.mark.parametrize("make", [bnn.CReLU, bnn.ZReLU, bnn.Cardioid, lambda **kw: bnn.ModReLU(3, -0.3, **kw)],
                         ids=["crelu", "zrelu", "cardioid", "modrelu"])
def test_activation_inplace(make):
    # As torch.nn.ReLU(inplace=True): the result is written into the input and returned; under
    # autograd the gradients are those of the out-of-place layer.
    assert "inplace=True" in repr(make(inplace=True)) and "inplace" not in repr(make())
    x = crandn(2, 3, 4, 5)
    want = make()(x)
    xi = x.clone()
    y = make(inplace=True)(xi)
    assert y is xi and torch.equal(xi, want)
    a = crandn(2, 3, 4, 5, requires_grad=True)
    b = a.detach().clone().requires_grad_(True)
    m, mi = make(), make(inplace=True)
    mi.load_state_dict(m.state_dict())
    m(a * 1).abs().sum().backward()
    mi(b * 1).abs().sum().backward()
    assert_close(b.grad, a.grad)
    with pytest.raises(TypeError, match="must be a complex tensor"):
        make(inplace=True)(torch.randn(2, 3, 4, 5))


@pytest.mark.parametrize("cls", [bnn.ComplexDropout, bnn.ComplexDropout2d])
def test_dropout_inplace(cls):
    m = cls(0.5, inplace=True)
    assert "inplace=True" in repr(m)
    x = crandn(4, 3, 5, 5) + 2
    torch.manual_seed(3)
    want = cls(0.5)(x)
    xi = x.clone()
    torch.manual_seed(3)
    y = m(xi)
    assert y is xi and torch.equal(xi, want)
    m.eval()
    assert m(xi) is xi and torch.equal(xi, want)  # identity in eval
    a = (crandn(4, 3, 5, 5, requires_grad=True))
    torch.manual_seed(3)
    out = m.train()(a * 2)
    out.abs().sum().backward()
    assert torch.equal(a.grad == 0, want == 0)


def test_signatures_match_torch():
    import inspect

    def names(c):
        return [p for p in inspect.signature(c).parameters]

    for ours, theirs in [(bnn.CReLU, torch.nn.ReLU), (bnn.ComplexDropout, torch.nn.Dropout),
                         (bnn.ComplexDropout2d, torch.nn.Dropout2d), (bnn.ComplexLayerNorm, torch.nn.LayerNorm),
                         (bnn.ComplexBatchNorm2d, torch.nn.BatchNorm2d), (bnn.ComplexBatchNorm1d, torch.nn.BatchNorm1d),
                         (bnn.NaiveComplexBatchNorm2d, torch.nn.BatchNorm2d), (bnn.ComplexUpsample, torch.nn.Upsample)]:
        assert names(ours) == names(theirs), ours.__name__
        kinds = {n: p.kind for n, p in inspect.signature(theirs).parameters.items()}
        assert {n: p.kind for n, p in inspect.signature(ours).parameters.items()} == kinds, ours.__name__
    for cls in (bnn.ZReLU, bnn.Cardioid):
        assert names(cls) == ["inplace"]
    assert "inplace" in names(bnn.ModReLU)


def test_upsample_recompute_scale_factor_and_modes():
    x = crandn(2, 3, 5, 7)
    for rsf in (None, True, False):
        up = bnn.ComplexUpsample(scale_factor=1.7, mode="bilinear", recompute_scale_factor=rsf)
        want = torch.nn.Upsample(scale_factor=1.7, mode="bilinear", recompute_scale_factor=rsf)
        assert_close(up(x), torch.complex(want(x.real), want(x.imag)))
    for mode in ("linear", "bicubic", "trilinear", "nearest-exact", "area"):
        with pytest.raises(ValueError, match=r"ComplexUpsample: mode must be one of \['bilinear', 'nearest'\]"):
            bnn.ComplexUpsample(scale_factor=2, mode=mode)
    doc = " ".join(bnn.ComplexUpsample.__doc__.split())
    assert "Arguments as torch.nn.Upsample" not in doc and "'nearest'" in doc and "'bilinear'" in doc


def test_layer_input_errors():
    with pytest.raises(ValueError, match=r"ModReLU: the input has 4 channels \(dim 1 of \[2, 4, 5, 5\]\) but the layer "
                                         r"was built for 3 \(num_features\)"):
        bnn.ModReLU(3)(crandn(2, 4, 5, 5))
    m64 = [bnn.ModReLU(3), bnn.ComplexBatchNorm2d(3), bnn.ComplexLayerNorm(5), bnn.NaiveComplexBatchNorm2d(3),
           bnn.ComplexConv2d(3, 4, 3), bnn.ComplexLinear(5, 2)]
    for m in m64:
        with pytest.raises(TypeError, match=rf"{type(m).__name__}: layer is complex64, input is complex128; convert "
                                            r"the module with \.to\(torch\.complex128\)"):
            m(crandn(2, 3, 4, 5, dtype=torch.complex128))
    with pytest.raises(TypeError, match=r"ComplexBatchNorm2d: layer is complex128, input is complex64; convert the "
                                        r"module with \.to\(torch\.complex64\)"):
        bnn.ComplexBatchNorm2d(3, dtype=torch.complex128)(crandn(2, 3, 4, 5))
