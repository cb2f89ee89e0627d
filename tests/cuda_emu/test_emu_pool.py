"""csrc/cuda/pool.cu with its glue, run by the CPU emulator: max-pool by magnitude forward (values
and argmax indices) and backward (atomicAdd scatter, overlapping windows) against the reference on
the test_pool geometry grid, ties to the first, NaN, gradcheck (complex128) and opcheck."""

import math

import pytest
import torch

from beamkernels import reference as ref
from tests.cuda_emu.helpers import guarded
from tests.helpers import assert_close, crandn
from tests.ops.test_pool import GEOMS, SHAPES


def _pool(E, x, geom):
    k, s, p, d, c = geom
    pair = lambda v: [v, v] if isinstance(v, int) else list(v)  # noqa: E731
    return E.complex_max_pool2d(x, pair(k), pair(s if s is not None else k), pair(p), pair(d), c)


@pytest.mark.parametrize("dtype", [torch.complex64, torch.complex128])
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("geom", GEOMS)
def test_matches_reference(E, launched, geom, shape, dtype):
    x = guarded(crandn(*shape, dtype=dtype)).requires_grad_()  # reads past the end: NaN
    xr = x.detach().clone().requires_grad_()
    y, idx = _pool(E, x, geom)
    k, s, p, d, c = geom
    y_ref, idx_ref = ref.complex_max_pool2d(xr, k, s, p, d, c, True)
    assert torch.equal(idx, idx_ref) and torch.equal(y.detach(), y_ref.detach())
    g = guarded(crandn(*y.shape, dtype=dtype))
    (gx,) = torch.autograd.grad(y, x, g)
    (gr,) = torch.autograd.grad(y_ref, xr, g)
    assert_close(gx, gr)  # overlapping windows add in a different order
    assert launched() == ["max_pool_fwd_kernel", "max_pool_bwd_kernel"]


def test_ties_and_nan(E):
    unit = torch.tensor([1, -1, 1j, -1j], dtype=torch.complex64)
    x = unit[torch.randint(0, 4, (2, 3, 6, 7))]
    for geom in [(2, None, 0, 1, False), (3, 1, 1, 1, False), (2, 2, 1, 1, True)]:
        y, idx = _pool(E, x, geom)
        k, s, p, d, c = geom
        y_ref, idx_ref = ref.complex_max_pool2d(x, k, s, p, d, c, True)
        assert torch.equal(idx, idx_ref) and torch.equal(y, y_ref), geom
    x = crandn(1, 2, 4, 4)
    x[0, 0, 1, 1] = complex(math.nan, 0.0)
    y, idx = _pool(E, x, (2, None, 0, 1, False))
    assert idx[0, 0, 0, 0] == 5 and torch.isnan(y[0, 0, 0, 0].real)


def test_gradcheck_and_opcheck(E):
    x = crandn(2, 2, 5, 6, dtype=torch.complex128, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: _pool(E, t, (3, 2, 1, 1, False))[0], (x,))
    xf = crandn(2, 3, 7, 9, requires_grad=True)
    torch.library.opcheck(E.complex_max_pool2d, (xf, [3, 3], [2, 2], [1, 1], [1, 1], True),
                          test_utils=("test_schema", "test_autograd_registration", "test_faketensor",
                                      "test_aot_dispatch_dynamic"))


def test_empty_batch(E):
    x = crandn(0, 3, 6, 6, requires_grad=True)
    y, idx = _pool(E, x, (2, None, 0, 1, False))
    assert y.shape == (0, 3, 3, 3) and idx.shape == y.shape


def test_schedules_agree(E, emu):
    """The forward is the same to the bit whatever the threads' order (in order, reversed, shuffled,
    warp-greedy); the backward too up to rounding: with overlapping windows several outputs atomically
    add into one input, in an order that changes with the schedule (as on a GPU)."""
    x, g = crandn(2, 3, 9, 13), crandn(2, 3, 8, 12)
    runs = []
    try:
        for schedule in (0, 1, 2, 3):
            emu.configure(schedule=schedule, seed=1234)
            y, idx = E.complex_max_pool2d(x, [2, 2], [1, 1], [0, 0], [1, 1], False)
            runs.append((y, idx, E.complex_max_pool2d_backward(g, idx, 9, 13)))
    finally:
        emu.configure()
    for y, idx, gx in runs[1:]:
        assert torch.equal(y, runs[0][0]) and torch.equal(idx, runs[0][1])
        assert_close(gx, runs[0][2])
