"""The thin complex ops (plain PyTorch on every device, no backends): average pools, linear,
dropout, upsample. Checked against torch's real ops on Re and Im (or complex matmul), with
gradchecks, dropout statistics and bad input."""

import math

import pytest
import torch
import torch.nn.functional as tF

import beamkernels
import beamkernels.functional as F
from tests.helpers import assert_close, crandn, gradcheck, run_on, skip_compile_if_interpreted, strided

C128 = torch.complex128


def _split(fn, x):
    return torch.complex(fn(x.real), fn(x.imag))


# ---- average pools ----
@pytest.mark.parametrize("args", [
    dict(kernel_size=2),
    dict(kernel_size=3, stride=2, padding=1),
    dict(kernel_size=(2, 3), stride=(1, 2), padding=(1, 0), ceil_mode=True, count_include_pad=False),
    dict(kernel_size=3, stride=2, divisor_override=5),
])
def test_avg_pool_matches_torch_on_re_im(args):
    x = crandn(2, 3, 7, 9, dtype=C128)
    y = F.complex_avg_pool2d(x, **args)
    assert_close(y, _split(lambda t: tF.avg_pool2d(t, **args), x))
    # The complex mean of one 2x2 window, by hand.
    if args == dict(kernel_size=2):
        assert_close(y[1, 2, 0, 0], x[1, 2, :2, :2].mean())


@pytest.mark.parametrize("size", [1, (2, 3), (5, None), (4, 4)])
def test_adaptive_avg_pool_matches_torch_on_re_im(size):
    x = crandn(2, 3, 7, 9, dtype=C128)
    assert_close(F.complex_adaptive_avg_pool2d(x, size), _split(lambda t: tF.adaptive_avg_pool2d(t, size), x))


def test_avg_pools_strided_unbatched_empty_and_gradcheck():
    x = strided(crandn(2, 3, 6, 8))
    assert_close(F.complex_avg_pool2d(x, 2), _split(lambda t: tF.avg_pool2d(t, 2), x.contiguous()))
    x3 = crandn(3, 6, 6)
    assert F.complex_avg_pool2d(x3, 2).shape == (3, 3, 3)
    assert F.complex_adaptive_avg_pool2d(crandn(0, 3, 6, 6), 2).shape == (0, 3, 2, 2)
    xg = crandn(1, 2, 5, 5, dtype=C128, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: F.complex_avg_pool2d(t, 3, 2, 1), (xg,))
    assert torch.autograd.gradcheck(lambda t: F.complex_adaptive_avg_pool2d(t, (2, 3)), (xg,))


def test_avg_pools_ignore_backend_choice():
    x = crandn(1, 2, 4, 4)
    with beamkernels.use_backend("triton"):
        y = F.complex_avg_pool2d(x, 2)
    assert torch.equal(y, F.complex_avg_pool2d(x, 2))


def test_avg_pool_bad_input():
    x = crandn(2, 3, 6, 6)
    with pytest.raises(TypeError, match=r"complex_avg_pool2d: argument 'x' must be a complex tensor"):
        F.complex_avg_pool2d(x.real, 2)
    with pytest.raises(ValueError, match=r"'padding' must be at most half"):
        F.complex_avg_pool2d(x, 2, 2, 2)
    with pytest.raises(ValueError, match=r"'divisor_override' must be a positive int"):
        F.complex_avg_pool2d(x, 2, divisor_override=0)
    with pytest.raises(ValueError, match=r"'output_size' must be a positive int"):
        F.complex_adaptive_avg_pool2d(x, 0)
    with pytest.raises(ValueError, match=r"\[N, C, H, W\] or unbatched"):
        F.complex_adaptive_avg_pool2d(x[0, 0], 2)


# ---- linear ----
@pytest.mark.parametrize("shape", [(5, 7), (2, 3, 7), (7,)])
@pytest.mark.parametrize("with_bias", [True, False])
def test_linear_matches_complex_matmul(shape, with_bias):
    x = crandn(*shape, dtype=C128)
    w = crandn(4, 7, dtype=C128)
    b = crandn(4, dtype=C128) if with_bias else None
    expected = x @ w.T + (b if with_bias else 0)
    assert_close(F.complex_linear(x, w, b), expected)
    # by the definition, one output element
    assert_close(F.complex_linear(x, w, b).reshape(-1, 4)[0, 1],
                 (x.reshape(-1, 7)[0] * w[1]).sum() + (b[1] if with_bias else 0))


def test_linear_gradcheck_and_float32():
    x = crandn(3, 5, dtype=C128, requires_grad=True)
    w = crandn(4, 5, dtype=C128, requires_grad=True)
    b = crandn(4, dtype=C128, requires_grad=True)
    assert torch.autograd.gradcheck(F.complex_linear, (x, w, b))
    x32, w32 = crandn(3, 5), crandn(4, 5)
    assert_close(F.complex_linear(x32, w32), (x32.to(C128) @ w32.to(C128).T).to(torch.complex64))
    assert F.complex_linear(crandn(0, 5), w32).shape == (0, 4)


@pytest.mark.parametrize("sizes", [((3, 5), 4), ((2, 30), 40), ((2, 3, 30), 40)])
def test_linear_each_backend_gradcheck_complex128(backend, device, sizes, monkeypatch):
    # Non-reference backends: (2, 30) -> 40 and (2, 3, 30) -> 40 run _ComplexLinear (g and x smaller
    # than W; its size floor is lowered here so gradcheck stays small), dL/dx in the orientation
    # timed faster on the CPU (each one forced: test_linear_gradcheck_each_dx_form); (3, 5) -> 4
    # runs F.linear.
    from beamkernels.ops import layers

    monkeypatch.setattr(layers, "CONJ_SMALL_MIN_WEIGHT", 0)
    xs, out = sizes
    probe = run_on(backend, F.complex_linear, crandn(*xs, device=device, requires_grad=True),
                   crandn(out, xs[-1], device=device))
    if backend != "reference":
        assert ("_ComplexLinear" in type(probe.grad_fn).__name__) == (xs[-1] == 30)
    x = crandn(*xs, dtype=C128, device=device, requires_grad=True)
    w = crandn(out, xs[-1], dtype=C128, device=device, requires_grad=True)
    b = crandn(out, dtype=C128, device=device, requires_grad=True)
    gradcheck(backend, F.complex_linear, [x, w, b])
    gradcheck(backend, lambda x, w: F.complex_linear(x, w), [x, w])
    # complex64 forward + backward equal to PyTorch's own F.linear
    x32, w32, b32 = (t.detach().to(torch.complex64).requires_grad_() for t in (x, w, b))
    g = crandn(*xs[:-1], out, device=device)
    got = torch.autograd.grad(run_on(backend, F.complex_linear, x32, w32, b32), (x32, w32, b32), g)
    want = torch.autograd.grad(tF.linear(x32, w32, b32), (x32, w32, b32), g)
    for a, e in zip(got, want):
        assert_close(a, e, rtol=1e-5, atol=1e-5)


def test_linear_conj_aware_backward_plain_grad_and_torch_func(monkeypatch):
    """The _ComplexLinear path: x.grad is a plain tensor (no conjugate bit), torch.func works."""
    from beamkernels.ops import layers

    monkeypatch.setattr(layers, "CONJ_SMALL_MIN_WEIGHT", 0)
    x = crandn(2, 6, dtype=C128, requires_grad=True)
    w = crandn(9, 6, dtype=C128)
    y = F.complex_linear(x, w)
    assert "_ComplexLinear" in type(y.grad_fn).__name__
    y.abs().sum().backward()
    assert not x.grad.is_conj()
    x.grad.numpy()
    g = torch.func.grad(lambda t: F.complex_linear(t, w).abs().sum())(x.detach().requires_grad_())
    assert_close(g, x.grad)


@pytest.mark.parametrize("rows", [0, 1, 3, 4, 7])
def test_linear_dx_forms_agree(rows):
    """Both dL/dx orientations of _ComplexLinear equal g conj(W), as plain contiguous tensors."""
    from beamkernels.ops import layers

    g, w = crandn(rows, 5, dtype=C128), crandn(5, 9, dtype=C128)
    expected = g @ w.conj()
    for transposed in (True, False):
        got = layers._dx(g, w, transposed)
        assert not got.is_conj() and got.is_contiguous()
        assert_close(got, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("transposed", [True, False])
def test_linear_gradcheck_each_dx_form(transposed, monkeypatch):
    from beamkernels.ops import layers

    monkeypatch.setattr(layers, "CONJ_SMALL_MIN_WEIGHT", 0)
    calls = []
    monkeypatch.setattr(layers, "_dx_transposed_form", lambda g2, w: calls.append(1) or transposed)
    x = crandn(2, 3, 30, dtype=C128, requires_grad=True)
    w = crandn(40, 30, dtype=C128, requires_grad=True)
    b = crandn(40, dtype=C128, requires_grad=True)
    assert torch.autograd.gradcheck(F.complex_linear, (x, w, b))
    assert calls  # the _ComplexLinear backward ran with the forced form


def test_linear_dx_form_timed_once_per_shape_and_fixed_when_deterministic(monkeypatch):
    from beamkernels.ops import layers

    monkeypatch.setattr(layers, "_DX_TIMED", {})
    monkeypatch.setattr(layers, "_DX_LAST", {})
    timed = []
    monkeypatch.setattr(layers, "_time_dx_forms", lambda g2, w: timed.append(g2.shape[0]) or False)
    g, w = crandn(6, 4), crandn(4, 10)
    assert layers._dx_transposed_form(g, w) is False and layers._dx_transposed_form(g, w) is False
    assert timed == [6]  # cached: one timing per (rows bucket, in, out, dtype, threads)
    assert layers._dx_transposed_form(crandn(5, 4), w) is False and timed == [6]  # rows 4-7: one bucket
    assert layers._dx_transposed_form(crandn(8, 4), w) is False and timed == [6, 8]
    # A layer's weight is an nn.Parameter: timed as well (through the whole backward).
    lin = beamkernels.nn.ComplexLinear(30, 40)
    monkeypatch.setattr(layers, "CONJ_SMALL_MIN_WEIGHT", 0)
    lin(crandn(2, 30, requires_grad=True)).abs().sum().backward()
    assert timed == [6, 8, 2]
    key = ((6).bit_length(), 10, 4, torch.complex64, torch.get_num_threads())
    assert key in layers._DX_TIMED and layers._DX_LAST["cpu"] is False
    # Deterministic mode and tracing never time: the fixed rule (and the last timed winner).
    with torch.inference_mode(False):
        prev = torch.are_deterministic_algorithms_enabled()
        torch.use_deterministic_algorithms(True)
        try:
            assert layers._dx_transposed_form(crandn(8, 4), w) is True
            assert layers._dx_transposed_form(crandn(2, 4), w) is False
        finally:
            torch.use_deterministic_algorithms(prev)
    assert timed == [6, 8, 2]
    # The real timing returns a bool and leaves no autograd graph behind.
    monkeypatch.undo()
    assert isinstance(layers._time_dx_forms(crandn(6, 4), w), bool)


@pytest.mark.parametrize("conj_aware", [False, True])
def test_linear_torch_compile_fullgraph(backend, device, conj_aware, monkeypatch):
    skip_compile_if_interpreted(backend)
    from beamkernels.ops import layers

    torch._dynamo.reset()
    if conj_aware:  # the _ComplexLinear path of the non-reference backends (its size floor lowered)
        monkeypatch.setattr(layers, "CONJ_SMALL_MIN_WEIGHT", 0)
    x = crandn(*((2, 30) if conj_aware else (4, 6)), device=device, requires_grad=True)
    w = crandn(*((40, 30) if conj_aware else (3, 6)), device=device, requires_grad=True)
    with beamkernels.use_backend(backend):
        compiled = torch.compile(lambda x, w: F.complex_linear(x, w).abs().sum(), fullgraph=True,
                                 backend="aot_eager" if device.type == "cpu" else "inductor")
        out = compiled(x, w)
        grads = torch.autograd.grad(out, (x, w))
    expected = tF.linear(x, w).abs().sum()
    assert_close(out, expected, rtol=1e-5, atol=1e-5)
    for a, e in zip(grads, torch.autograd.grad(expected, (x, w))):
        assert_close(a, e, rtol=1e-4, atol=1e-4)


def test_linear_bad_input():
    x, w = crandn(3, 5), crandn(4, 5)
    with pytest.raises(TypeError, match="argument 'weight' must be a complex tensor"):
        F.complex_linear(x, w.real)
    with pytest.raises(ValueError, match=r"argument 'x' must be \[\.\.\., 5\]"):
        F.complex_linear(crandn(3, 6), w)
    with pytest.raises(ValueError, match=r"'bias' must have shape \[4\], got \[5\]"):
        F.complex_linear(x, w, crandn(5))
    with pytest.raises(TypeError, match="argument 'weight' has dtype torch.complex128 but 'x' has dtype torch.complex64"):
        F.complex_linear(x, w.to(C128))
    with pytest.raises(ValueError, match="'weight' must be 2-D"):
        F.complex_linear(x, w[None])


# ---- dropout ----
@pytest.mark.parametrize("p", [0.2, 0.5])
def test_dropout_one_mask_scaled_once_and_energy_preserved(p):
    torch.manual_seed(1)
    x = torch.polar(torch.rand(400_000) + 0.5, torch.rand(400_000) * 2 * math.pi).to(torch.complex64)
    y = F.complex_dropout(x, p)
    dropped = y == 0
    # One mask: Re and Im are zero together, exactly where the mask is.
    assert torch.equal(y.real == 0, dropped) and torch.equal(y.imag == 0, dropped)
    # Kept values scaled by 1/(1-p) once (not (1-p)^-2).
    assert_close(y[~dropped], x[~dropped] / (1 - p), rtol=1e-6, atol=0)
    # Drop rate p, E[y] = x, and E|y|^2 = |x|^2 / (1 - p) (as real dropout), within ~5 sigma.
    n = x.numel()
    assert abs(dropped.float().mean().item() - p) < 5 * math.sqrt(p * (1 - p) / n)
    ratio = (y.abs() ** 2).mean() / ((x.abs() ** 2).mean() / (1 - p))
    assert abs(ratio.item() - 1) < 0.01
    assert abs(((y - x).mean() / x.abs().mean()).item()) < 0.01


def test_dropout_eval_edges_and_grad():
    x = crandn(4, 5, requires_grad=True)
    assert F.complex_dropout(x, 0.5, training=False) is x
    assert F.complex_dropout(x, 0.0) is x
    y = F.complex_dropout(x, 1.0)
    assert torch.equal(y, torch.zeros_like(x))
    y.abs().sum().backward()
    assert torch.isfinite(torch.view_as_real(x.grad)).all()
    # The gradient is the same mask and scale.
    x2 = crandn(1000, requires_grad=True)
    torch.manual_seed(3)
    y2 = F.complex_dropout(x2, 0.3)
    (g,) = torch.autograd.grad(y2, x2, torch.ones_like(y2))
    assert torch.equal(g, (y2 != 0).to(g.dtype) / 0.7)
    assert F.complex_dropout(crandn(0, 3), 0.5).shape == (0, 3)


def test_dropout2d_zeroes_whole_channels():
    torch.manual_seed(2)
    x = crandn(64, 16, 5, 6) + 3  # no exact zeros
    y = F.complex_dropout2d(x, 0.5)
    zero = (y == 0).flatten(2)
    per_channel = zero.all(-1)
    assert torch.equal(zero.any(-1), per_channel)  # a channel is dropped whole or not at all
    assert 0.4 < per_channel.float().mean().item() < 0.6
    kept = ~per_channel
    assert_close(y.flatten(2)[kept], x.flatten(2)[kept] / 0.5, rtol=1e-6, atol=0)
    y3 = F.complex_dropout2d(crandn(8, 4, 4) + 3, 0.5)  # unbatched [C, H, W]: per channel
    z3 = (y3 == 0).flatten(1)
    assert torch.equal(z3.any(-1), z3.all(-1))
    assert F.complex_dropout2d(x, 0.5, training=False) is x


def test_dropout_bad_input():
    x = crandn(2, 3, 4, 4)
    with pytest.raises(ValueError, match=r"complex_dropout: argument 'p' must be in \[0, 1\], got 1.5"):
        F.complex_dropout(x, 1.5)
    with pytest.raises(ValueError, match=r"must be in \[0, 1\], got -0.1"):
        F.complex_dropout2d(x, -0.1)
    with pytest.raises(TypeError, match="argument 'p' must be a number"):
        F.complex_dropout(x, "0.5")
    with pytest.raises(TypeError, match="must be a complex tensor"):
        F.complex_dropout(x.real, 0.5)
    with pytest.raises(ValueError, match=r"complex_dropout2d: argument 'x' must be \[N, C, H, W\]"):
        F.complex_dropout2d(x[0, 0], 0.5)


# ---- upsample ----
@pytest.mark.parametrize("kw", [
    dict(scale_factor=2, mode="nearest"),
    dict(size=(5, 7), mode="nearest"),
    dict(scale_factor=2, mode="bilinear", align_corners=False),
    dict(size=(9, 4), mode="bilinear", align_corners=True),
])
def test_upsample_matches_torch_on_re_im(kw):
    x = crandn(2, 3, 4, 5, dtype=C128)
    assert_close(F.complex_upsample(x, **kw), _split(lambda t: tF.interpolate(t, **kw), x))


def test_upsample_gradcheck_strided_and_bad_input():
    x = crandn(1, 2, 3, 4, dtype=C128, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: F.complex_upsample(t, scale_factor=2, mode="bilinear"), (x,))
    xs = strided(crandn(1, 2, 3, 4))
    assert_close(F.complex_upsample(xs, scale_factor=2), _split(lambda t: tF.interpolate(t, scale_factor=2), xs))
    assert F.complex_upsample(crandn(2, 3, 4), scale_factor=2).shape == (2, 3, 8)  # 1-D nearest
    with pytest.raises(ValueError, match="argument 'mode' must be one of"):
        F.complex_upsample(x, scale_factor=2, mode="bicubic")
    with pytest.raises(ValueError, match="mode 'bilinear' needs a 4-D input"):
        F.complex_upsample(crandn(2, 3, 4), scale_factor=2, mode="bilinear")
    with pytest.raises(ValueError, match="exactly one of 'size' and 'scale_factor'"):
        F.complex_upsample(x)
    with pytest.raises(ValueError, match="'align_corners' applies only to mode 'bilinear'"):
        F.complex_upsample(x, scale_factor=2, align_corners=True)
    with pytest.raises(TypeError, match="must be a complex tensor"):
        F.complex_upsample(x.real, scale_factor=2)


def test_torch_compile_fullgraph_chain():
    """The thin ops trace with fullgraph=True (validation included) and match eager, gradients too."""
    torch._dynamo.reset()
    x = crandn(2, 3, 8, 8, requires_grad=True)
    w = crandn(5, 16, requires_grad=True)
    b = crandn(5, requires_grad=True)

    def f(x, w, b):
        y = F.complex_avg_pool2d(x, 2, 1, 1)
        y = F.complex_adaptive_avg_pool2d(y, 4)
        y = F.complex_upsample(y, scale_factor=2, mode="bilinear")
        y = F.complex_dropout2d(F.complex_dropout(y, 0.0), 0.5, training=False)
        y = F.complex_adaptive_avg_pool2d(y, (4, 4)).flatten(2)
        return F.complex_linear(y, w, b).abs().sum()

    out = torch.compile(f, fullgraph=True, backend="aot_eager")(x, w, b)
    grads = torch.autograd.grad(out, (x, w, b))
    expected = f(x, w, b)
    grads_ref = torch.autograd.grad(expected, (x, w, b))
    assert_close(out, expected, rtol=1e-4, atol=1e-4)
    for g, gr in zip(grads, grads_ref):
        assert_close(g, gr, rtol=1e-4, atol=1e-4)
    drop = torch.compile(lambda t: F.complex_dropout(t, 0.3), fullgraph=True, backend="aot_eager")(x.detach())
    assert torch.equal(drop.real == 0, drop.imag == 0)
