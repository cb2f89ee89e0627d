"""complex_batch_norm / complex_layer_norm on every backend that runs here: forward and gradients
vs the reference (training and eval, with and without affine), gradcheck (complex128), opcheck,
torch.compile, odd/strided/empty shapes, running statistics, whitening, degenerate channels,
and bad input."""

import math

import pytest
import torch

import beamkernels
import beamkernels.functional as F
from beamkernels import reference as ref
from beamkernels.reference.norm import batch_stats
from tests.helpers import (
    INTERPRETED_TRITON, assert_close, check_forward_backward, crandn, gradcheck, opcheck, run_on,
    skip_compile_if_interpreted, strided,
)

# Reductions over n values per channel: tolerances scaled for float32 accumulation in the reference.
TOL = {torch.complex64: dict(rtol=2e-4, atol=2e-4), torch.complex128: dict(rtol=1e-9, atol=1e-9)}
# Odd sizes: [N, C], one spatial value, non-multiples of any block, a 4-D layer-like case.
SHAPES = [(5, 3), (3, 2, 7), (2, 4, 5, 3), (4, 1, 129)]


def _skip_big_for_interpreter(backend, numel):
    if backend == "triton" and INTERPRETED_TRITON and numel > 50_000:
        pytest.skip("large shape: too slow in the Triton interpreter")


def _data(shape, dtype=torch.complex64, device="cpu", requires_grad=False):
    """Correlated, offset real/imag parts per channel, so that whitening is not trivial."""
    x = crandn(*shape, dtype=dtype, device=device)
    c = shape[1]
    mix = torch.linspace(-0.8, 0.8, c, dtype=x.real.dtype, device=device).view((1, c) + (1,) * (len(shape) - 2))
    x = torch.complex(1.5 * x.real + 0.3, mix * x.real + 0.5 * x.imag - 0.7)
    return x.requires_grad_(requires_grad)


def _params(c, dtype=torch.float32, device="cpu", requires_grad=False):
    w = torch.stack([torch.linspace(0.5, 1.5, c), torch.linspace(-0.3, 0.3, c), torch.linspace(1.2, 0.7, c)], 1)
    b = torch.stack([torch.linspace(-1, 1, c), torch.linspace(0.5, -0.5, c)], 1)
    return (w.to(dtype=dtype, device=device).requires_grad_(requires_grad),
            b.to(dtype=dtype, device=device).requires_grad_(requires_grad))


def _running(c, dtype=torch.float32, device="cpu"):
    rm = torch.stack([torch.linspace(-0.5, 0.5, c), torch.linspace(0.2, -0.2, c)], 1)
    rv = torch.stack([torch.linspace(0.5, 2.0, c), torch.linspace(-0.2, 0.3, c), torch.linspace(1.5, 0.8, c)], 1)
    return rm.to(dtype=dtype, device=device), rv.to(dtype=dtype, device=device)


def _bn(training, running=None):
    def f(x, w=None, b=None):
        rm, rv = running if running is not None else (None, None)
        return F.complex_batch_norm(x, rm, rv, w, b, training, 0.1, 1e-5)

    def r(x, w=None, b=None):
        rm, rv = running if running is not None else (None, None)
        return ref.complex_batch_norm(x, rm, rv, w, b, training, 0.1, 1e-5)

    return f, r


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", [torch.complex64, torch.complex128])
@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("affine", [True, False])
def test_forward_and_gradients_match_reference(backend, device, shape, dtype, training, affine):
    real = dtype.to_real()
    x = _data(shape, dtype, device, requires_grad=True)
    running = None if training else _running(shape[1], real, device)
    f, r = _bn(training, running)
    inputs = [x, *_params(shape[1], real, device, True)] if affine else [x]
    check_forward_backward(backend, f, r, inputs, dtype=dtype, **TOL[dtype])


@pytest.mark.parametrize("training", [True, False])
def test_gradcheck_complex128(backend, device, training):
    x = _data((3, 2, 5), torch.complex128, device, requires_grad=True)
    w, b = _params(2, torch.float64, device, True)
    running = None if training else _running(2, torch.float64, device)
    f, _ = _bn(training, running)
    # The interpreter re-runs every kernel per perturbation: its fast mode (random projections) only.
    kw = dict(fast_mode=True) if backend == "triton" and INTERPRETED_TRITON else {}
    gradcheck(backend, f, [x, w, b], **kw)
    gradcheck(backend, lambda x: f(x), [x], **kw)  # affine=False


def test_large_rows_are_chunked(backend, device):
    """Rows longer than one work chunk (CPU grain 16384) and many chunks per channel."""
    _skip_big_for_interpreter(backend, 2 * 2 * 20000)
    x = _data((2, 2, 20000), device=device, requires_grad=True)
    f, r = _bn(True)
    check_forward_backward(backend, f, r, [x, *_params(2, device=device, requires_grad=True)], **TOL[torch.complex64])


def test_large_mean_is_accurate(backend, device):
    """A mean far from 0 against the spread: the kernels' shifted double sums and m_hi + m_lo
    centring keep float32 accurate (the reference computes in the input precision and does not)."""
    if backend == "reference":
        pytest.skip("the reference computes its statistics in the input precision")
    x = (_data((4, 2, 300), torch.complex128, device) * 0.01 + (1000 - 500j)).to(torch.complex64)
    y = run_on(backend, F.complex_batch_norm, x, None, None, None, None, True)
    oracle = ref.complex_batch_norm(x.to(torch.complex128), None, None, training=True).to(torch.complex64)
    assert_close(y, oracle, atol=3e-3, rtol=3e-3)


def test_strided_input(backend, device):
    x = strided(_data((3, 4, 6, 10), device=device))
    w, b = _params(4, device=device)
    y = run_on(backend, F.complex_batch_norm, x, None, None, w, b, True)
    assert_close(y, ref.complex_batch_norm(x, None, None, w, b, True), **TOL[torch.complex64])
    xp = _data((3, 6, 10, 4), device=device).permute(0, 3, 1, 2)  # channels-last-like view
    rm, rv = _running(4, device=device)
    y = run_on(backend, F.complex_batch_norm, xp, rm, rv, w, b, False)
    assert_close(y, ref.complex_batch_norm(xp, rm, rv, w, b, False), **TOL[torch.complex64])


@pytest.mark.parametrize("training", [True, False])
def test_empty_batch(backend, device, training):
    x = crandn(0, 3, 5, device=device, requires_grad=True)
    w, b = _params(3, device=device, requires_grad=True)
    rm, rv = _running(3, device=device)
    rm0, rv0 = rm.clone(), rv.clone()
    y = run_on(backend, F.complex_batch_norm, x, rm, rv, w, b, training)
    assert y.shape == x.shape
    gx, gw, gb = torch.autograd.grad(y, [x, w, b], torch.zeros_like(y), allow_unused=True)
    assert gx is None or gx.shape == x.shape
    assert torch.equal(rm, rm0) and torch.equal(rv, rv0)  # no update from an empty batch (as torch)


def test_running_statistics_match_reference(backend, device):
    """Several training steps update the running buffers exactly as the reference (which follows
    torch.nn.BatchNorm: momentum, unbiased covariance); eval then uses them."""
    c = 3
    rm, rv = torch.zeros(c, 2, device=device), torch.tensor([[1.0, 0.0, 1.0]] * c, device=device)
    rm_ref, rv_ref = rm.clone(), rv.clone()
    w, b = _params(c, device=device)
    for step in range(3):
        x = _data((4, c, 6), device=device) * (step + 1)
        run_on(backend, F.complex_batch_norm, x, rm, rv, w, b, True, 0.3)
        ref.complex_batch_norm(x, rm_ref, rv_ref, w, b, True, 0.3)
    assert_close(rm, rm_ref, **TOL[torch.complex64])
    assert_close(rv, rv_ref, **TOL[torch.complex64])
    # The unbiased update by hand for one step from the initial state.
    x = _data((4, c, 6), dtype=torch.complex128, device=device)
    rm1, rv1 = torch.zeros(c, 2, dtype=torch.float64, device=device), torch.tensor([[1.0, 0, 1]] * c, dtype=torch.float64, device=device)
    run_on(backend, F.complex_batch_norm, x, rm1, rv1, None, None, True, 0.1)
    d = torch.stack([x.real - x.real.mean((0, 2), keepdim=True), x.imag - x.imag.mean((0, 2), keepdim=True)])
    n = 4 * 6
    unb = torch.stack([(d[0] * d[0]).sum((0, 2)), (d[0] * d[1]).sum((0, 2)), (d[1] * d[1]).sum((0, 2))], 1) / (n - 1)
    assert_close(rv1, 0.9 * torch.tensor([[1.0, 0, 1]] * c, dtype=torch.float64, device=device) + 0.1 * unb)
    xe = _data((2, c, 5), device=device)
    assert_close(run_on(backend, F.complex_batch_norm, xe, rm, rv, w, b, False),
                 ref.complex_batch_norm(xe, rm_ref, rv_ref, w, b, False), **TOL[torch.complex64])


def test_whitening_whitens(backend, device):
    """Training mode with G = I, beta = 0: per channel the output has mean 0 and covariance I."""
    x = _data((8, 3, 40), torch.complex128, device)
    y = run_on(backend, F.complex_batch_norm, x, None, None, None, None, True, 0.1, 0.0)
    mean, cov = batch_stats(y)
    assert_close(mean, torch.zeros_like(mean), atol=1e-9, rtol=0)
    assert_close(cov, torch.tensor([[1.0, 0.0, 1.0]] * 3, dtype=torch.float64, device=device), atol=1e-9, rtol=0)


def test_zero_variance_channel_is_finite(backend, device):
    """A constant channel (and a perfectly correlated one): eps keeps the output finite."""
    x = _data((4, 3, 6), device=device, requires_grad=False).detach()
    x[:, 0] = 2 - 1j
    x[:, 1] = (1 + 1j) * x[:, 1].real  # Re = Im: singular covariance
    x.requires_grad_(True)
    f, r = _bn(True)
    y = run_on(backend, f, x)
    (gx,) = torch.autograd.grad(y, x, torch.ones_like(y))
    assert torch.isfinite(torch.view_as_real(y)).all() and torch.isfinite(torch.view_as_real(gx)).all()
    assert y[:, 0].abs().max() == 0
    check_forward_backward(backend, f, r, [x], atol=2e-3, rtol=2e-3)


def test_batch_of_one(backend, device):
    x = _data((1, 3), device=device)
    rm, rv = _running(3, device=device)
    y = run_on(backend, F.complex_batch_norm, x, rm, rv, None, None, False)  # eval: fine
    assert_close(y, ref.complex_batch_norm(x, rm, rv, None, None, False))
    with pytest.raises(ValueError, match=r"Expected more than 1 value per channel when training, got input size \[1, 3\]"):
        run_on(backend, F.complex_batch_norm, x, rm, rv, None, None, True)
    # One sample with several spatial positions trains fine.
    x = _data((1, 3, 4), device=device)
    assert_close(run_on(backend, F.complex_batch_norm, x, None, None, None, None, True),
                 ref.complex_batch_norm(x, None, None, None, None, True), **TOL[torch.complex64])


@pytest.mark.parametrize("shape", [(2, 3, 4, 5), (3, 7)])
@pytest.mark.parametrize("affine", [True, False])
def test_layer_norm_matches_reference(backend, device, shape, affine):
    x = _data(shape, device=device, requires_grad=True)
    ns = shape[2:] if len(shape) > 2 else shape[1:]
    if affine:
        w = (torch.rand(*ns, 3, device=device) + 0.5).requires_grad_(True)
        b = torch.randn(*ns, 2, device=device, requires_grad=True)
        inputs = [x, w, b]
    else:
        inputs = [x]
    check_forward_backward(backend, lambda x, w=None, b=None: F.complex_layer_norm(x, ns, w, b),
                           lambda x, w=None, b=None: ref.complex_layer_norm(x, ns, w, b), inputs, **TOL[torch.complex64])


def test_layer_norm_per_sample(backend, device):
    """Each sample is normalized with its own statistics: other samples do not change it."""
    x = _data((4, 3, 5), device=device)
    y = run_on(backend, F.complex_layer_norm, x, (3, 5))
    y2 = run_on(backend, F.complex_layer_norm, torch.cat([x[:2], 100 * x[2:] + 7]), (3, 5))
    assert_close(y[:2], y2[:2], **TOL[torch.complex64])
    mean, cov = batch_stats(y.reshape(1, 4, 15))
    assert_close(mean, torch.zeros_like(mean), atol=1e-5, rtol=0)
    assert_close(cov, torch.tensor([[1.0, 0.0, 1.0]] * 4, device=device), atol=1e-3, rtol=0)


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("requires_grad", [False, True])
@pytest.mark.parametrize("contiguous", [True, False])
def test_opcheck(backend, device, training, requires_grad, contiguous):
    if backend == "reference":
        pytest.skip("the reference is plain PyTorch, not a registered op")
    x = _data((2, 3, 4, 6), device=device)
    x = x if contiguous else x.transpose(2, 3)
    x.requires_grad_(requires_grad)
    w, b = _params(3, device=device, requires_grad=requires_grad)
    rm, rv = (None, None) if training else _running(3, device=device)
    prefix = "triton_" if backend == "triton" else ""
    op = getattr(torch.ops.beamkernels, prefix + "complex_batch_norm")
    opcheck(op, (x, rm, rv, w, b, 1e-5), backend)
    opcheck(op, (x, rm, rv, None, None, 1e-5), backend)
    y, mean, cov = op(x.detach(), rm, rv, w.detach(), b.detach(), 1e-5)
    bwd = getattr(torch.ops.beamkernels, prefix + "complex_batch_norm_backward")
    g = crandn(*x.shape, device=device)
    opcheck(bwd, (g, x.detach(), mean, cov, w.detach(), training, 1e-5), backend)
    opcheck(bwd, (g, x.detach(), mean, cov, None, training, 1e-5), backend)


@pytest.mark.parametrize("training", [True, False])
def test_torch_compile_fullgraph(backend, device, training):
    skip_compile_if_interpreted(backend)
    torch._dynamo.reset()
    x = _data((2, 3, 5, 7), device=device, requires_grad=True)
    w, b = _params(3, device=device, requires_grad=True)
    rm, rv = _running(3, device=device)
    rm2, rv2 = rm.clone(), rv.clone()

    def f(x, w, b, rm, rv):
        return F.complex_batch_norm(x, rm, rv, w, b, training, 0.1, 1e-5).abs().sum()

    with beamkernels.use_backend(backend):
        compiled = torch.compile(f, fullgraph=True, backend="aot_eager" if device.type == "cpu" else "inductor")
        out = compiled(x, w, b, rm, rv)
        out.backward()
    x2, w2, b2 = (t.detach().clone().requires_grad_(True) for t in (x, w, b))
    expected = ref.complex_batch_norm(x2, rm2, rv2, w2, b2, training, 0.1, 1e-5).abs().sum()
    expected.backward()
    assert_close(out, expected, rtol=1e-4, atol=1e-3)
    for a, e in ((x.grad, x2.grad), (w.grad, w2.grad), (b.grad, b2.grad)):
        assert_close(a, e, rtol=1e-3, atol=1e-3)
    assert_close(rm, rm2, **TOL[torch.complex64])
    assert_close(rv, rv2, **TOL[torch.complex64])


def test_bad_input(backend, device):
    x = _data((2, 3, 4), device=device)
    rm, rv = _running(3, device=device)
    with pytest.raises(TypeError, match=r"argument 'x' must be a complex tensor.*float32"):
        run_on(backend, F.complex_batch_norm, x.real.contiguous(), rm, rv)
    with pytest.raises(ValueError, match=r"at least 2 dims"):
        run_on(backend, F.complex_batch_norm, crandn(5, device=device), None, None, None, None, True)
    with pytest.raises(ValueError, match=r"'running_mean' must have shape \[3, 2\], got \[4, 2\]"):
        run_on(backend, F.complex_batch_norm, x, torch.zeros(4, 2, device=device), rv)
    with pytest.raises(ValueError, match=r"'running_var' must have shape \[3, 3\], got \[3\]"):
        run_on(backend, F.complex_batch_norm, x, rm, torch.ones(3, device=device))
    with pytest.raises(ValueError, match=r"'weight' must have shape \[3, 3\]"):
        run_on(backend, F.complex_batch_norm, x, rm, rv, torch.ones(3, 2, device=device))
    with pytest.raises(TypeError, match=r"'bias' must be a real tensor of dtype torch.float32.*complex64"):
        run_on(backend, F.complex_batch_norm, x, rm, rv, None, torch.zeros(3, 2, dtype=torch.complex64, device=device))
    with pytest.raises(TypeError, match=r"'running_mean' must be a real tensor of dtype torch.float32.*float64"):
        run_on(backend, F.complex_batch_norm, x, rm.double(), rv)
    with pytest.raises(ValueError, match="training=False needs running_mean"):
        run_on(backend, F.complex_batch_norm, x, None, None)
    with pytest.raises(ValueError, match="both running_mean and running_var"):
        run_on(backend, F.complex_batch_norm, x, rm, None, None, None, True)
    with pytest.raises(ValueError, match="eps must be"):
        run_on(backend, F.complex_batch_norm, x, rm, rv, None, None, False, 0.1, -1.0)
    with pytest.raises(ValueError, match=r"trailing dims of x must equal normalized_shape \[5\]"):
        run_on(backend, F.complex_layer_norm, x, 5)
    with pytest.raises(ValueError, match=r"'weight' must have shape \[4, 3\]"):
        run_on(backend, F.complex_layer_norm, x, 4, torch.ones(4, 2, device=device))


def test_compiled_op_errors_directly():
    """The C++ glue validates too (for callers of torch.ops.beamkernels.* directly)."""
    if "cpu" not in beamkernels.available_backends():
        pytest.skip("extension not built")
    x = crandn(2, 3, 4)
    with pytest.raises(RuntimeError, match="argument 'x' must be a complex tensor"):
        torch.ops.beamkernels.complex_batch_norm(torch.randn(2, 3), None, None, None, None, 1e-5)
    with pytest.raises(RuntimeError, match=r"'weight' must have shape \[3, 3\]"):
        torch.ops.beamkernels.complex_batch_norm(x, None, None, torch.ones(3), None, 1e-5)
    with pytest.raises(RuntimeError, match="give both 'mean' and 'cov'"):
        torch.ops.beamkernels.complex_batch_norm(x, torch.zeros(3, 2), None, None, None, 1e-5)
    with pytest.raises(RuntimeError, match="'grad' has shape"):
        torch.ops.beamkernels.complex_batch_norm_backward(crandn(2, 3), x, torch.zeros(3, 2), torch.ones(3, 3), None,
                                                          True, 1e-5)


def test_naive_batch_norm_is_two_real_batch_norms():
    x = _data((4, 3, 5, 6))
    rm, rv = torch.zeros(3, 2), torch.ones(3, 2)
    w, b = torch.rand(3, 2) + 0.5, torch.randn(3, 2)
    y = F.naive_complex_batch_norm(x, rm, rv, w, b, True, 0.1, 1e-5)
    rm_r, rv_r = torch.zeros(3), torch.ones(3)
    y_r = torch.nn.functional.batch_norm(x.real, rm_r, rv_r, w[:, 0], b[:, 0], True, 0.1, 1e-5)
    assert_close(y.real, y_r)
    assert_close(rm[:, 0], rm_r)
    assert_close(rv[:, 0], rv_r)
    assert not math.isclose(float(y.real.std()), 0.0)
