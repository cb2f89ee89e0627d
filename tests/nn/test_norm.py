"""ComplexBatchNorm1d/2d, ComplexLayerNorm, NaiveComplexBatchNorm2d: torch.nn.BatchNorm semantics
(train/eval, momentum, momentum=None, affine=False, track_running_stats=False), state_dict,
parameter layout, errors."""

import io
import math

import pytest
import torch

import beamkernels
from beamkernels import nn as bnn
from beamkernels import reference as ref
from tests.helpers import assert_close, crandn, run_on, skip_compile_if_interpreted

TOL = dict(rtol=2e-4, atol=2e-4)


def _data(*shape, scale=1.0):
    x = crandn(*shape)
    return torch.complex(scale * (1.5 * x.real + 0.3), 0.4 * x.real + 0.5 * x.imag - 0.7)


def test_parameters_and_buffers_layout():
    m = bnn.ComplexBatchNorm2d(4)
    assert m.weight.shape == (4, 3) and m.bias.shape == (4, 2)
    assert m.running_mean.shape == (4, 2) and m.running_var.shape == (4, 3)
    assert all(not t.is_complex() for t in m.state_dict().values())  # no complex buffers
    assert_close(m.weight, torch.tensor([[1 / math.sqrt(2), 0.0, 1 / math.sqrt(2)]] * 4))
    assert torch.equal(m.running_var, torch.tensor([[1.0, 0.0, 1.0]] * 4))
    assert m.num_batches_tracked.item() == 0
    m64 = bnn.ComplexBatchNorm1d(2, dtype=torch.complex128)
    assert m64.weight.dtype == torch.float64 and m64.running_mean.dtype == torch.float64
    assert "ComplexBatchNorm2d(4, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)" in repr(m)


@pytest.mark.parametrize("momentum", [0.1, None])
def test_train_then_eval_matches_reference(backend, device, momentum):
    m = bnn.ComplexBatchNorm2d(3, momentum=momentum, device=device)
    rm, rv = torch.zeros(3, 2, device=device), torch.tensor([[1.0, 0.0, 1.0]] * 3, device=device)
    w, b = m.weight.detach().clone(), m.bias.detach().clone()
    with beamkernels.use_backend(backend):
        for step in range(3):
            x = _data(4, 3, 3, 5, scale=step + 1).to(device)
            y = m(x)
            factor = 1.0 / (step + 1) if momentum is None else momentum
            assert_close(y, ref.complex_batch_norm(x, rm, rv, w, b, True, factor, 1e-5), **TOL)
        assert m.num_batches_tracked.item() == 3
        assert_close(m.running_mean, rm, **TOL)
        assert_close(m.running_var, rv, **TOL)
        m.eval()
        x = _data(1, 3, 2, 2).to(device)  # batch of 1 in eval
        before = (m.running_mean.clone(), m.running_var.clone())
        assert_close(m(x), ref.complex_batch_norm(x, rm, rv, w, b, False, 0.1, 1e-5), **TOL)
        assert torch.equal(m.running_mean, before[0]) and torch.equal(m.running_var, before[1])  # frozen


def test_momentum_none_is_cumulative_average():
    m = bnn.ComplexBatchNorm1d(2, momentum=None)
    xs = [_data(8, 2, 3, scale=s) for s in (1.0, 2.0, 3.0)]
    for x in xs:
        m(x)
    means = torch.stack([torch.stack([x.real.mean((0, 2)), x.imag.mean((0, 2))], 1) for x in xs])
    assert_close(m.running_mean, means.mean(0), **TOL)


def test_affine_false_and_no_running_stats(backend, device):
    m = bnn.ComplexBatchNorm2d(3, affine=False, device=device)
    assert m.weight is None and m.bias is None
    x = _data(4, 3, 2, 3).to(device)
    y = run_on(backend, m, x)
    assert_close(y, ref.complex_batch_norm(x, None, None, None, None, True, 0.1, 1e-5), **TOL)
    m = bnn.ComplexBatchNorm2d(3, track_running_stats=False, device=device)
    assert m.running_mean is None and m.running_var is None
    m.eval()  # batch statistics in eval too
    y = run_on(backend, m, x)
    assert_close(y, ref.complex_batch_norm(x, None, None, m.weight.detach(), m.bias.detach(), True), **TOL)


def test_state_dict_round_trip():
    m = bnn.ComplexBatchNorm2d(3)
    for _ in range(2):
        m(_data(4, 3, 2, 2))
    with torch.no_grad():
        m.weight.add_(0.1)
    buf = io.BytesIO()
    torch.save(m.state_dict(), buf)
    buf.seek(0)
    m2 = bnn.ComplexBatchNorm2d(3)
    m2.load_state_dict(torch.load(buf))
    m.eval()
    m2.eval()
    x = _data(2, 3, 2, 2)
    assert torch.equal(m(x), m2(x))
    assert m2.num_batches_tracked.item() == 2


def test_gradients_reach_parameters():
    m = bnn.ComplexBatchNorm2d(3)
    x = _data(4, 3, 2, 2).requires_grad_(True)
    m(x).abs().sum().backward()
    assert m.weight.grad is not None and m.weight.grad.shape == (3, 3)
    assert m.bias.grad is not None and x.grad is not None


def test_input_errors():
    m = bnn.ComplexBatchNorm2d(3)
    with pytest.raises(ValueError, match=r"expected a 4D input \[N, C, H, W\], got shape \[2, 3, 4\]"):
        m(crandn(2, 3, 4))
    with pytest.raises(ValueError, match=r"expected 3 channels \(dim 1\), got input of shape \[2, 4, 1, 1\]"):
        m(crandn(2, 4, 1, 1))
    with pytest.raises(TypeError, match="must be a complex tensor"):
        m(torch.randn(2, 3, 2, 2))
    with pytest.raises(ValueError, match="Expected more than 1 value per channel when training"):
        m(crandn(1, 3, 1, 1))
    with pytest.raises(ValueError, match=r"expected a 2D or 3D input"):
        bnn.ComplexBatchNorm1d(3)(crandn(2, 3, 4, 5))
    with pytest.raises(ValueError, match="num_features must be"):
        bnn.ComplexBatchNorm2d(0)
    m1 = bnn.ComplexBatchNorm1d(3)
    assert m1(crandn(4, 3)).shape == (4, 3)
    m1.eval()
    assert m1(crandn(1, 3)).shape == (1, 3)


def test_layer_norm_is_per_sample(backend, device):
    ln = bnn.ComplexLayerNorm((3, 4), device=device)
    assert ln.weight.shape == (3, 4, 3) and ln.bias.shape == (3, 4, 2)
    x = _data(5, 3, 4).to(device)
    y = run_on(backend, ln, x)
    for i in range(5):  # a batch of one gives the same result: never batch-dependent
        assert_close(y[i:i + 1], run_on(backend, ln, x[i:i + 1]), **TOL)
    assert_close(y, ref.complex_layer_norm(x, (3, 4), ln.weight.detach(), ln.bias.detach()), **TOL)
    ln.eval()
    assert_close(run_on(backend, ln, x), y, **TOL)  # no train/eval difference
    assert "ComplexLayerNorm((3, 4), eps=1e-05, elementwise_affine=True)" in repr(ln)
    assert bnn.ComplexLayerNorm(4, elementwise_affine=False).weight is None
    with pytest.raises(ValueError, match="normalized_shape"):
        bnn.ComplexLayerNorm(4)(crandn(2, 5))


def test_naive_batch_norm_layer():
    m = bnn.NaiveComplexBatchNorm2d(3)
    t = torch.nn.BatchNorm2d(3)
    x = _data(4, 3, 2, 5)
    y = m(x)
    assert_close(y.real, t(x.real.contiguous()))
    assert_close(m.running_mean[:, 0], t.running_mean)
    assert_close(m.running_var[:, 0], t.running_var)
    m.eval()
    assert m(x).shape == x.shape


def test_layers_compile_fullgraph(backend, device):
    skip_compile_if_interpreted(backend)
    torch._dynamo.reset()
    model = torch.nn.Sequential(bnn.ComplexBatchNorm2d(3, device=device), bnn.ComplexLayerNorm((2, 5), device=device))
    ref_model = torch.nn.Sequential(bnn.ComplexBatchNorm2d(3, device=device), bnn.ComplexLayerNorm((2, 5), device=device))
    x = _data(4, 3, 2, 5).to(device).requires_grad_(True)
    x2 = x.detach().clone().requires_grad_(True)
    with beamkernels.use_backend(backend):
        compiled = torch.compile(model, fullgraph=True, backend="aot_eager" if device.type == "cpu" else "inductor")
        out = compiled(x).abs().sum()
        out.backward()
    with beamkernels.use_backend("reference"):
        expected = ref_model(x2).abs().sum()
        expected.backward()
    assert_close(out, expected, rtol=1e-4, atol=1e-3)
    assert_close(x.grad, x2.grad, rtol=1e-3, atol=1e-3)
    assert_close(model[0].running_var, ref_model[0].running_var, **TOL)
    assert_close(model[0].weight.grad, ref_model[0].weight.grad, rtol=1e-3, atol=1e-3)


def test_layers_compile_dynamic_shapes(backend, device):
    # dynamic=True traces eps as a symbolic float: the ops' eps check must not call math.isfinite.
    skip_compile_if_interpreted(backend)
    torch._dynamo.reset()
    model = torch.nn.Sequential(bnn.ComplexBatchNorm2d(3, device=device), bnn.ComplexLayerNorm(5, device=device))
    with beamkernels.use_backend(backend):
        compiled = torch.compile(model, fullgraph=True, dynamic=True,
                                 backend="aot_eager" if device.type == "cpu" else "inductor")
        for shape in [(4, 3, 2, 5), (6, 3, 3, 5)]:
            x = _data(*shape).to(device)
            assert_close(compiled(x), model(x), rtol=1e-4, atol=1e-4)
    torch._dynamo.reset()


def test_cpu_kernel_is_deterministic():
    if "cpu" not in beamkernels.available_backends():
        pytest.skip("extension not built")
    x = _data(8, 4, 3000)
    g = crandn(8, 4, 3000)
    with beamkernels.use_backend("cpu"):
        outs = []
        for _ in range(3):
            xx = x.clone().requires_grad_(True)
            y = beamkernels.functional.complex_batch_norm(xx, None, None, None, None, True)
            (gx,) = torch.autograd.grad(y, xx, g)
            outs.append((y, gx))
    for y, gx in outs[1:]:
        assert torch.equal(y, outs[0][0]) and torch.equal(gx, outs[0][1])


@pytest.mark.parametrize("cls", [bnn.ComplexBatchNorm2d, bnn.NaiveComplexBatchNorm2d])
def test_batch_norm_bias_false(cls):
    # torch.nn.BatchNorm2d's keyword-only bias=False: affine scale only, no shift.
    m = cls(3, bias=False)
    assert m.bias is None and m.weight is not None and "bias" not in dict(m.named_parameters())
    x = _data(4, 3, 2, 5)
    ref_m = cls(3)
    y = m(x)
    assert_close(y, ref_m(x), **TOL)  # bias init 0
    y.abs().sum().backward()
    assert m.weight.grad is not None
    assert cls(3, affine=False, bias=False).weight is None
    with pytest.raises(TypeError):
        cls(3, 1e-5, 0.1, True, True, None, None, False)  # bias is keyword-only, as in torch


def test_layer_norm_torch_argument_order_and_bias():
    # torch.nn.LayerNorm's order: normalized_shape, eps, elementwise_affine, bias, device, dtype.
    ln = bnn.ComplexLayerNorm(5, 1e-3, True, False, "cpu", torch.complex128)
    assert ln.eps == 1e-3 and ln.bias is None and ln.weight.dtype == torch.float64
    x = _data(2, 3, 5).to(torch.complex128)
    assert_close(ln(x), ref.complex_layer_norm(x, (5,), ln.weight.detach(), None, 1e-3))
    ln(x).abs().sum().backward()
    assert ln.weight.grad is not None
    assert bnn.ComplexLayerNorm(5, elementwise_affine=False, bias=True).bias is None


def test_naive_batch_norm_resets_and_checks():
    with pytest.raises(ValueError, match="NaiveComplexBatchNorm2d: num_features must be an int >= 1, got 0"):
        bnn.NaiveComplexBatchNorm2d(0)
    m = bnn.NaiveComplexBatchNorm2d(3)
    fresh = {k: v.clone() for k, v in m.state_dict().items()}
    m(_data(4, 3, 2, 5))
    with torch.no_grad():
        m.weight.add_(1.0)
        m.bias.add_(1.0)
    assert m.num_batches_tracked.item() == 1
    m.reset_running_stats()
    assert m.num_batches_tracked.item() == 0 and torch.equal(m.running_mean, fresh["running_mean"])
    assert torch.equal(m.running_var, fresh["running_var"]) and not torch.equal(m.weight, fresh["weight"])
    m(_data(4, 3, 2, 5))
    m.reset_parameters()
    for k, v in m.state_dict().items():
        assert torch.equal(v, fresh[k]), k
    with pytest.raises(TypeError, match="NaiveComplexBatchNorm2d: input must be a torch.Tensor, got list"):
        m([1, 2])
