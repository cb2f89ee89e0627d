"""csrc/cuda/norm.cu with its glue, run by the CPU emulator: the whitening batch-norm's block
reduction (warp shuffles + shared memory, several blocks per channel), the per-channel finalize and
the apply kernels, forward and backward, training and eval, with and without the affine, against the
reference; gradcheck (complex128) and opcheck through the package's own autograd and fake kernels."""

import pytest
import torch

from beamkernels import reference as ref
from beamkernels.reference.norm import batch_stats
from tests.cuda_emu.helpers import guarded
from tests.helpers import assert_close
from tests.ops.test_norm import TOL, _data, _params, _running

# [N, C], one spatial value, odd sizes, 3 x 1 x 4100: 12300 values in a channel, 7 blocks of
# the reduction (2048 values each), and 130 channels: two blocks of the per-channel finalize kernels.
SHAPES = [(5, 3), (3, 2, 7), (2, 4, 5, 3), (3, 1, 4100), (2, 130, 3)]  # 130: two finalize blocks


def _bn(E, x, training, w=None, b=None, running=None):
    if training:
        return E.complex_batch_norm(x, None, None, w, b, 1e-5)[0]
    rm, rv = running
    return E.complex_batch_norm(x, rm, rv, w, b, 1e-5)[0]


@pytest.mark.parametrize("dtype", [torch.complex64, torch.complex128])
@pytest.mark.parametrize("affine", [False, True])
@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("shape", SHAPES)
def test_matches_reference(E, launched, shape, training, affine, dtype):
    real = dtype.to_real()
    c = shape[1]
    x = guarded(_data(shape, dtype)).requires_grad_()  # reads past the end: NaN
    w, b = _params(c, real, requires_grad=True) if affine else (None, None)
    running = _running(c, real)
    leaves = [t for t in (x, w, b) if t is not None]
    leaves_ref = [t.detach().clone().requires_grad_() for t in leaves]
    y = _bn(E, *leaves[:1], training, *(leaves[1:] or [None, None]), running=running)
    xr = leaves_ref[0]
    wr, br = (leaves_ref[1], leaves_ref[2]) if affine else (None, None)
    y_ref = ref.complex_batch_norm(xr, *(running if not training else (None, None)), wr, br, training, 0.1, 1e-5)
    assert_close(y, y_ref, msg="forward", **TOL[dtype])
    g = guarded(torch.randn_like(y))
    grads, grads_ref = torch.autograd.grad(y, leaves, g), torch.autograd.grad(y_ref, leaves_ref, g)
    for name, gi, gr in zip(["x", "weight", "bias"], grads, grads_ref):
        assert_close(gi, gr, msg=f"dL/d{name}", **TOL[dtype])
    names = launched()  # the reduction runs in the backward always, in the forward when training
    assert names.count("bn_reduce_kernel") == (2 if training else 1) and names.count("bn_apply_kernel") == 2, names


def test_batch_statistics_returned(E):
    x = _data((3, 2, 7, 5))
    _, mean, cov = E.complex_batch_norm(x, None, None, None, None, 1e-5)
    m_ref, c_ref = batch_stats(x)
    assert_close(mean, m_ref, **TOL[torch.complex64])
    assert_close(cov, c_ref, **TOL[torch.complex64])


def test_gradcheck_and_opcheck(E):
    x = _data((3, 2, 5), torch.complex128, requires_grad=True)
    w, b = _params(2, torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda *t: _bn(E, t[0], True, t[1], t[2]), (x, w, b))
    xf = _data((4, 3, 6), requires_grad=True)
    wf, bf = _params(3, requires_grad=True)
    torch.library.opcheck(E.complex_batch_norm, (xf, None, None, wf, bf, 1e-5),
                          test_utils=("test_schema", "test_autograd_registration", "test_faketensor",
                                      "test_aot_dispatch_dynamic"))


def test_empty_batch(E):
    x = torch.zeros(0, 3, 4, dtype=torch.complex64, requires_grad=True)
    y, mean, cov = E.complex_batch_norm(x, None, None, None, None, 1e-5)
    assert y.shape == x.shape and torch.equal(mean, torch.zeros(3, 2))
    rm, rv = _running(3)
    y, _, _ = E.complex_batch_norm(x, rm, rv, None, None, 1e-5)  # eval
    assert y.shape == x.shape
    w, b = _params(3)
    gx, gw, gb = E.complex_batch_norm_backward(torch.zeros_like(x), x, rm, rv, w, True, 1e-5)
    assert gx.shape == x.shape and torch.equal(gw, torch.zeros(3, 3)) and torch.equal(gb, torch.zeros(3, 2))


def test_channels_beyond_the_grid_limit(E, emu):
    """Channels run on grid y; beyond the device's limit (65535; here lowered to 2) the reduction
    kernel loops over them, its trailing barrier included."""
    x = _data((3, 5, 7), requires_grad=True)
    w, b = _params(5, requires_grad=True)
    emu.configure(max_grid_yz=2)
    try:
        y = E.complex_batch_norm(x, None, None, w, b, 1e-5)[0]
        g = torch.randn_like(y)
        grads = torch.autograd.grad(y, [x, w, b], g)
    finally:
        emu.configure()
    xr, wr, br = (t.detach().clone().requires_grad_() for t in (x, w, b))
    y_ref = ref.complex_batch_norm(xr, None, None, wr, br, True, 0.1, 1e-5)
    assert_close(y, y_ref, **TOL[torch.complex64])
    for gi, gr in zip(grads, torch.autograd.grad(y_ref, [xr, wr, br], g)):
        assert_close(gi, gr, **TOL[torch.complex64])



def test_schedules_agree(E, emu):
    """The block reduction's barriers and shuffles are where they must be: the threads' order between
    barriers (in order, reversed, shuffled, warp-greedy) does not change a bit of the forward or the backward (7
    reduction blocks per channel)."""
    x = _data((3, 2, 4100))
    w, b = _params(2)
    g = torch.randn(3, 2, 4100, dtype=torch.complex64)
    runs = []
    try:
        for schedule in (0, 1, 2, 3):
            emu.configure(schedule=schedule, seed=1234)
            y, mean, cov = E.complex_batch_norm(x, None, None, w, b, 1e-5)
            runs.append((y, mean, cov) + tuple(E.complex_batch_norm_backward(g, x, mean, cov, w, True, 1e-5)))
    finally:
        emu.configure()
    for run in runs[1:]:
        for a, c in zip(run, runs[0]):
            assert torch.equal(a, c)
