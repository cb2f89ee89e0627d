"""crelu, zrelu, modrelu, cardioid on every backend that runs here: forward and gradients vs the
reference, gradcheck (complex128), opcheck, torch.compile, odd/strided/empty shapes, the
non-differentiable points, and bad input."""

import pytest
import torch

import beamkernels
import beamkernels.functional as F
from beamkernels import reference as ref
from tests.helpers import (
    INTERPRETED_TRITON, assert_close, check_forward_backward, crandn, gradcheck, opcheck, run_on,
    skip_compile_if_interpreted, strided,
)

UNARY = ["crelu", "zrelu", "cardioid"]
ALL = UNARY + ["modrelu"]
# Odd sizes: not multiples of any block; 1-element rows; a 4-D layer-sized case.
SHAPES = [(1, 1), (2, 3, 7), (3, 5, 129), (2, 4, 9, 13)]


def _fn(name):
    return getattr(F, name)


def _call(name, x, bias=None):
    return F.modrelu(x, bias) if name == "modrelu" else _fn(name)(x)


def _ref(name):
    return getattr(ref, name)


def _bias(x, requires_grad=False):
    # Mixed signs so that modReLU's dead zone (|z| + b <= 0) is exercised.
    b = torch.linspace(-1.0, 0.5, x.shape[1], dtype=x.real.dtype, device=x.device)
    return b.requires_grad_(requires_grad)


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", [torch.complex64, torch.complex128])
def test_forward_and_gradients_match_reference(backend, device, name, shape, dtype):
    x = crandn(*shape, dtype=dtype, device=device, requires_grad=True)
    if name == "modrelu":
        check_forward_backward(backend, F.modrelu, ref.modrelu, [x, _bias(x, True)], dtype=dtype)
    else:
        check_forward_backward(backend, _fn(name), _ref(name), [x], dtype=dtype)


@pytest.mark.parametrize("name", ALL)
def test_gradcheck_complex128(backend, device, name):
    x = crandn(2, 3, 5, dtype=torch.complex128, device=device, requires_grad=True)
    if name == "modrelu":
        gradcheck(backend, F.modrelu, [x, _bias(x, True)])
    else:
        gradcheck(backend, _fn(name), [x])


@pytest.mark.parametrize("name", ALL)
def test_strided_input(backend, device, name):
    x = strided(crandn(3, 4, 6, 10, device=device))
    b = _bias(x)
    y = run_on(backend, _call, name, x, b if name == "modrelu" else None)
    y_ref = ref.modrelu(x, b) if name == "modrelu" else _ref(name)(x)
    assert_close(y, y_ref)
    # A permuted (channels-last-like) view too.
    xp = crandn(3, 6, 10, 4, device=device).permute(0, 3, 1, 2)
    bp = _bias(xp)
    y = run_on(backend, _call, name, xp, bp if name == "modrelu" else None)
    assert_close(y, ref.modrelu(xp, bp) if name == "modrelu" else _ref(name)(xp))


@pytest.mark.parametrize("name", ALL)
def test_empty_batch(backend, device, name):
    x = crandn(0, 3, 5, device=device, requires_grad=True)
    b = _bias(x, True)
    y = run_on(backend, _call, name, x, b if name == "modrelu" else None)
    assert y.shape == x.shape
    torch.autograd.backward(y, torch.zeros_like(y))
    assert x.grad.shape == x.shape
    if name == "modrelu" and b.grad is not None:
        assert torch.equal(b.grad, torch.zeros_like(b))


@pytest.mark.parametrize("name", ALL)
def test_special_points_no_nan(backend, device, name):
    """z = 0 and points on both axes: values and gradients are finite and match the reference."""
    pts = torch.tensor([0, 1, -1, 1j, -1j, 1 + 1j, -2 - 0.5j, 0.25 - 0j], dtype=torch.complex64, device=device)
    x = pts.repeat(2, 3, 1).requires_grad_(True)  # [2, 3, 8]
    b = torch.tensor([-0.5, 0.0, 0.5], device=device, requires_grad=True)
    args = [x, b] if name == "modrelu" else [x]
    check_forward_backward(backend, F.modrelu if name == "modrelu" else _fn(name),
                           ref.modrelu if name == "modrelu" else _ref(name), args)
    y = run_on(backend, _call, name, x, b if name == "modrelu" else None)
    (gx,) = torch.autograd.grad(y, x, torch.ones_like(y))
    assert torch.isfinite(torch.view_as_real(y)).all() and torch.isfinite(torch.view_as_real(gx)).all()
    assert y[..., 0].abs().max() == 0  # f(0) = 0 for all four


def test_defined_values_at_special_points():
    """The definitions fixed in the reference (and csrc/activation.h)."""
    z = torch.tensor([[0j, 1 + 0j, -1 + 0j, 1j, -1j]], dtype=torch.complex128)
    x = z.clone().requires_grad_(True)
    y = ref.cardioid(x)
    (g,) = torch.autograd.grad(y, x, torch.ones_like(y))
    assert g[0, 0] == 0.5  # cardioid gradient at 0: the mean slope
    assert torch.equal(ref.zrelu(z), torch.tensor([[0j, 1 + 0j, 0j, 1j, 0j]], dtype=torch.complex128))
    assert torch.equal(ref.crelu(z), torch.tensor([[0j, 1 + 0j, 0j, 1j, 0j]], dtype=torch.complex128))
    b = torch.tensor([2.0], dtype=torch.float64)
    assert ref.modrelu(z.reshape(5, 1), b)[0, 0] == 0  # z = 0 gives 0 even with b > 0
    assert torch.allclose(ref.modrelu(z.reshape(5, 1), b)[1, 0], torch.tensor(3 + 0j, dtype=torch.complex128))


# Magnitudes over the whole normal range of each dtype: |z|^2 underflows below 1e-19 (complex64)
# and overflows above 1e19, so a kernel that forms a^2 + b^2 or 1 / |z|^3 directly gets zeros,
# inf or NaN there (the kernels before 2026-12-03 did).
_MAGNITUDES = {torch.complex64: [1e-30, 1e-22, 1e-20, 1e-15, 1e-6, 1.0, 1e6, 1e15, 1e20, 1e30],
               torch.complex128: [1e-300, 1e-160, 1e-100, 1e-6, 1.0, 1e100, 1e160, 1e300]}


@pytest.mark.parametrize("name", ["modrelu", "cardioid"])
@pytest.mark.parametrize("dtype", [torch.complex64, torch.complex128])
def test_tiny_and_huge_magnitudes(backend, device, name, dtype):
    """modReLU and cardioid at |z| from 1e-30 to 1e30 (complex64; 1e-300 to 1e300 in complex128):
    values, dL/dz and dL/db match the exact result (the reference in float64 arithmetic on the same
    inputs) elementwise to a few ulp of the result's size, and nothing is inf or NaN."""
    g = torch.Generator().manual_seed(0)
    mags = torch.tensor(_MAGNITUDES[dtype], dtype=torch.float64)
    phase = torch.rand(3, len(mags), generator=g, dtype=torch.float64) * 6.283185307179586
    z = torch.polar(mags.expand(3, -1), phase)
    z[:, 0] = torch.tensor([mags[0] + 0j, 1j * mags[0], -mags[0] + 0j])  # on the axes too
    x = z.to(dtype).reshape(1, 3, -1).to(device).requires_grad_(True)
    G = torch.randn(x.shape, generator=g, dtype=dtype).to(device)
    # Biases of both signs, small against the largest |z| and large against the smallest.
    b = torch.tensor([0.5, -1e-10, 0.0], dtype=x.real.dtype, device=device, requires_grad=True)
    args = [x, b] if name == "modrelu" else [x]
    y = run_on(backend, _call, name, *args)
    grads = torch.autograd.grad(y, args, G)
    # The exact answer: float64 (complex128) arithmetic is exact enough for complex64 inputs; for
    # complex128 inputs the reference's own scaled polar form is the comparison.
    exact_args = [t.detach().to(torch.complex128 if t.is_complex() else torch.float64).requires_grad_(True)
                  for t in args]
    y_ex = (ref.modrelu if name == "modrelu" else ref.cardioid)(*exact_args)
    grads_ex = torch.autograd.grad(y_ex, exact_args, G.to(torch.complex128))
    eps = torch.finfo(x.real.dtype).eps
    for what, got, want in [("value", y, y_ex)] + [(f"grad {i}", a, e) for i, (a, e) in enumerate(zip(grads, grads_ex))]:
        got = got.detach().to(want.dtype)
        assert torch.isfinite(torch.view_as_real(got) if got.is_complex() else got).all(), f"{what}: inf/NaN ({backend})"
        err = (got - want).abs()
        # Per element, relative to the sizes the result is computed from (forward: |y| + |z| + |b|;
        # cardioid's 1 + cos(arg z) and modReLU's |z| + b cancel near their zeros, inherently).
        xa, ba, Ga = (t.detach().abs().to(torch.float64) for t in (x, b, G))
        if what == "value":
            scale = want.abs() + xa + (ba.reshape(1, -1, 1) if name == "modrelu" else 0.0)
        elif what == "grad 0":  # |G| (1 + |b| / |z|): modReLU's tangential factor s = 1 + b / |z|
            scale = want.abs() + Ga * (1 + (ba.reshape(1, -1, 1) / xa if name == "modrelu" else 0.0))
        else:  # dL/db sums u . G over elements: relative to the sum of |G|
            scale = Ga.sum(dim=(0, 2))
        assert (err <= 16 * eps * scale + 1e-300).all(), (
            f"{what} ({backend}, {dtype}): worst relative error {(err / (scale + 1e-300)).max().item():.3g}")


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("requires_grad", [False, True])
@pytest.mark.parametrize("contiguous", [True, False])
def test_opcheck(backend, device, name, requires_grad, contiguous):
    if backend == "reference":
        pytest.skip("the reference is plain PyTorch, not a registered op")
    x = crandn(2, 3, 4, 6, device=device)
    x = x if contiguous else x.transpose(2, 3)
    x.requires_grad_(requires_grad)
    b = _bias(x, requires_grad)
    prefix = "triton_" if backend == "triton" else ""
    op = getattr(torch.ops.beamkernels, prefix + name)
    opcheck(op, (x, b) if name == "modrelu" else (x,), backend)
    g = crandn(*x.shape, device=device)
    bwd = getattr(torch.ops.beamkernels, prefix + name + "_backward")
    opcheck(bwd, (g, x.detach(), b.detach()) if name == "modrelu" else (g, x.detach()), backend)


@pytest.mark.parametrize("name", ALL)
def test_torch_compile_fullgraph(backend, device, name):
    skip_compile_if_interpreted(backend)
    torch._dynamo.reset()
    x = crandn(2, 3, 5, 7, device=device, requires_grad=True)
    b = _bias(x, True)

    def f(x, b):
        return _call(name, x, b if name == "modrelu" else None).abs().sum()

    with beamkernels.use_backend(backend):
        compiled = torch.compile(f, fullgraph=True, backend="aot_eager" if device.type == "cpu" else "inductor")
        out = compiled(x, b)
        out.backward()
    x2, b2 = x.detach().clone().requires_grad_(True), b.detach().clone().requires_grad_(True)
    expected = (ref.modrelu(x2, b2) if name == "modrelu" else _ref(name)(x2)).abs().sum()
    expected.backward()
    assert_close(out, expected, rtol=1e-4, atol=1e-4)
    assert_close(x.grad, x2.grad, rtol=1e-4, atol=1e-4)


def test_layers():
    x = crandn(2, 4, 5, 5)
    assert torch.equal(beamkernels.nn.CReLU()(x), F.crelu(x))
    assert torch.equal(beamkernels.nn.ZReLU()(x), F.zrelu(x))
    assert torch.equal(beamkernels.nn.Cardioid()(x), F.cardioid(x))
    m = beamkernels.nn.ModReLU(4, bias_init=-0.1)
    assert m.bias.dtype == torch.float32 and m.bias.shape == (4,)
    assert torch.equal(m(x), F.modrelu(x, m.bias))
    m64 = beamkernels.nn.ModReLU(4, dtype=torch.complex128)
    assert m64.bias.dtype == torch.float64
    assert "ModReLU(4)" in repr(m)


@pytest.mark.parametrize("name", ALL)
def test_bad_input(backend, device, name):
    real = torch.randn(2, 3, 4, device=device)
    with pytest.raises(TypeError, match=r"argument 'x' must be a complex tensor.*float32"):
        run_on(backend, _call, name, real, torch.zeros(3, device=device))
    with pytest.raises(TypeError, match="must be a torch.Tensor"):
        run_on(backend, _call, name, [1, 2], None)


def test_modrelu_bad_bias(backend, device):
    x = crandn(2, 3, 4, device=device)
    with pytest.raises(ValueError, match=r"'bias' must have shape \[3\], got \[4\]"):
        run_on(backend, F.modrelu, x, torch.zeros(4, device=device))
    with pytest.raises(TypeError, match=r"'bias' must be a real tensor of dtype torch.float32.*complex64"):
        run_on(backend, F.modrelu, x, torch.zeros(3, dtype=torch.complex64, device=device))
    with pytest.raises(TypeError, match=r"'bias' must be a real tensor of dtype torch.float32.*float64"):
        run_on(backend, F.modrelu, x, torch.zeros(3, dtype=torch.float64, device=device))
    with pytest.raises(ValueError, match=r"at least 2 dims"):
        run_on(backend, F.modrelu, crandn(5, device=device), torch.zeros(5, device=device))
    if torch.cuda.is_available():
        with pytest.raises(ValueError, match="'bias' is on"):
            run_on(backend, F.modrelu, x, torch.zeros(3, device="cuda" if device.type == "cpu" else "cpu"))


def test_compiled_op_errors_directly():
    """The C++ glue validates too (for callers of torch.ops.beamkernels.* directly)."""
    if "cpu" not in beamkernels.available_backends():
        pytest.skip("extension not built")
    with pytest.raises(RuntimeError, match="argument 'x' must be a complex tensor"):
        torch.ops.beamkernels.crelu(torch.randn(3))
    with pytest.raises(RuntimeError, match=r"'bias' must have shape \[3\]"):
        torch.ops.beamkernels.modrelu(crandn(2, 3), torch.zeros(2))
    with pytest.raises(RuntimeError, match="'grad' has shape"):
        torch.ops.beamkernels.crelu_backward(crandn(2, 4), crandn(2, 3))


def test_modrelu_strided_and_expanded_bias(backend, device):
    """A non-contiguous bias (every other element; one value expanded to C) reads the right values
    (the Triton kernel read bias_ptr + c as if contiguous: wrong values, then memory past an
    expanded bias's single element). Not through check_forward_backward: its clone() would make
    the bias contiguous."""
    x = crandn(2, 4, 7, device=device)
    g = crandn(2, 4, 7, device=device)
    wide = torch.linspace(-0.5, 0.5, 8, device=device)
    for b in (wide[::2], torch.tensor(0.3, device=device).expand(4)):
        assert not b.is_contiguous()
        xa = x.clone().requires_grad_(True)
        y = run_on(backend, F.modrelu, xa, b)
        (gx,) = torch.autograd.grad(y, xa, g)
        xr = x.clone().requires_grad_(True)
        y_ref = ref.modrelu(xr, b.contiguous())
        (gx_ref,) = torch.autograd.grad(y_ref, xr, g)
        assert_close(y, y_ref, msg=f"forward ({backend})")
        assert_close(gx, gx_ref, msg=f"dL/dx ({backend})")
