"""csrc/cuda/activation.cu with its glue, run by the CPU emulator: the four activations forward and
backward against the reference on rows longer and shorter than a block's chunk (1024), modReLU's
bias gradient from per-block partial sums (warp shuffles + shared memory), the non-differentiable
points, gradcheck (complex128) and opcheck through the package's own autograd and fake kernels."""

import pytest
import torch

from beamkernels import reference as ref
from tests.cuda_emu.helpers import guarded
from tests.helpers import TOL, assert_close, crandn

ALL = ["crelu", "zrelu", "cardioid", "modrelu"]
# [outer, channels, inner]: 1-element rows, rows of 1 chunk + 1 (two blocks, the second nearly
# empty), 2.5 chunks, a 4-D layer-like case.
SHAPES = [(1, 1), (2, 3, 1025), (1, 2, 2600), (2, 4, 9, 13)]


def _bias(x, requires_grad=False):
    b = torch.linspace(-1.0, 0.5, x.shape[1], dtype=x.real.dtype)
    return b.requires_grad_(requires_grad)


def _run(ops, name, x, b=None):
    return ops.modrelu(x, b) if name == "modrelu" else getattr(ops, name)(x)


def _ref(name, x, b=None):
    return ref.modrelu(x, b) if name == "modrelu" else getattr(ref, name)(x)


@pytest.mark.parametrize("dtype", [torch.complex64, torch.complex128])
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("name", ALL)
def test_matches_reference(E, launched, name, shape, dtype):
    x = guarded(crandn(*shape, dtype=dtype), pad=2048).requires_grad_()  # reads past the end: NaN
    xr = x.detach().clone().requires_grad_()
    b = _bias(x, True) if name == "modrelu" else None
    br = b.detach().clone().requires_grad_() if b is not None else None
    y, y_ref = _run(E, name, x, b), _ref(name, xr, br)
    assert_close(y, y_ref, msg=f"{name} forward")
    g = guarded(crandn(*shape, dtype=dtype), pad=2048)
    ins, ins_ref = [t for t in (x, b) if t is not None], [t for t in (xr, br) if t is not None]
    grads, grads_ref = torch.autograd.grad(y, ins, g), torch.autograd.grad(y_ref, ins_ref, g)
    assert_close(grads[0], grads_ref[0], msg=f"{name} dL/dx")
    if name == "modrelu":  # a sum over up to 5200 values per channel
        tol = dict(rtol=1e-4, atol=1e-4) if dtype == torch.complex64 else TOL[torch.float64]
        assert_close(grads[1], grads_ref[1], msg="modrelu dL/dbias", **tol)
    names = launched()
    assert "act_fwd_kernel" in names and "act_bwd_kernel" in names, names


@pytest.mark.parametrize("name", ALL)
def test_special_points(E, name):
    """z = 0 and the axes: values and gradients are those the reference defines (csrc/activation.h)."""
    pts = torch.tensor([0, 1, -1, 1j, -1j, 1 + 1j, -2 - 0.5j, 0.25 - 0j], dtype=torch.complex64)
    x = pts.repeat(2, 3, 1).requires_grad_(True)
    xr = x.detach().clone().requires_grad_(True)
    b = torch.tensor([-0.5, 0.0, 0.5]) if name == "modrelu" else None
    y, y_ref = _run(E, name, x, b), _ref(name, xr, b)
    assert_close(y, y_ref)
    (gx,) = torch.autograd.grad(y, x, torch.ones_like(y))
    (gr,) = torch.autograd.grad(y_ref, xr, torch.ones_like(y_ref))
    assert_close(gx, gr)


@pytest.mark.parametrize("name", ALL)
def test_gradcheck_and_opcheck(E, name):
    x = crandn(2, 3, 5, dtype=torch.complex128, requires_grad=True)
    b = _bias(x, True) if name == "modrelu" else None
    ins = (x, b) if b is not None else (x,)
    assert torch.autograd.gradcheck(lambda *t: _run(E, name, *t), ins)
    xf = crandn(2, 3, 7, requires_grad=True)
    args = (xf, _bias(xf, True)) if name == "modrelu" else (xf,)
    torch.library.opcheck(getattr(E, name), args, test_utils=("test_schema", "test_autograd_registration",
                                                              "test_faketensor", "test_aot_dispatch_dynamic"))


def test_empty_and_strided(E):
    x = crandn(0, 3, 5, requires_grad=True)
    y = E.modrelu(x, _bias(x))
    assert y.shape == x.shape
    xs = crandn(2, 3, 20)[..., ::2]
    assert_close(E.cardioid(xs), ref.cardioid(xs))



def test_schedules_agree(E, emu):
    """modReLU's per-block bias-gradient sum (shuffles + shared memory) is the same, to the bit, whatever
    the threads' order between barriers (in order, reversed, shuffled, warp-greedy)."""
    x, g = crandn(2, 3, 2600), crandn(2, 3, 2600)
    b = _bias(x)
    runs = []
    try:
        for schedule in (0, 1, 2, 3):
            emu.configure(schedule=schedule, seed=1234)
            runs.append(tuple(E.modrelu_backward(g, x, b)))
    finally:
        emu.configure()
    for gx, gb in runs[1:]:
        assert torch.equal(gx, runs[0][0]) and torch.equal(gb, runs[0][1])
