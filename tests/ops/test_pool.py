"""complex_max_pool2d (max-pool by magnitude) on every backend that runs here: forward and indices
vs the reference and vs torch's real max-pool on |z|, gradients, gradcheck (complex128), opcheck,
torch.compile, odd/strided/empty/unbatched inputs, ties to the first, NaN, a small geometry grid,
and bad input. The average pools (plain PyTorch, no backends) are in test_layers.py."""

import math

import pytest
import torch
import torch.nn.functional as tF

import beamkernels
import beamkernels.functional as F
from beamkernels import reference as ref
from tests.helpers import (
    INTERPRETED_TRITON, assert_close, check_forward_backward, crandn, gradcheck, opcheck, run_on, skip_compile_if_interpreted, strided,
)

# (kernel_size, stride, padding, dilation, ceil_mode): the 2x2 fast path, padding, asymmetric
# kernels/strides with dilation and ceil_mode, overlapping windows.
GEOMS = [
    (2, None, 0, 1, False),
    (3, 2, 1, 1, False),
    ((2, 3), (1, 2), (1, 0), (2, 1), True),
    (3, 2, 0, 1, True),
    (2, 1, 1, 2, False),
    (2, 2, 0, 1, True),  # 2x2 with a partial last window on odd sizes
]
SHAPES = [(1, 1, 4, 4), (2, 3, 7, 9), (3, 2, 9, 13)]


def _pool(x, geom, return_indices=False):
    k, s, p, d, c = geom
    return F.complex_max_pool2d(x, k, s, p, d, c, return_indices)


def _ref_pool(x, geom, return_indices=False):
    k, s, p, d, c = geom
    return ref.complex_max_pool2d(x, k, s, p, d, c, return_indices)


@pytest.mark.parametrize("geom", GEOMS)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", [torch.complex64, torch.complex128])
def test_forward_indices_and_gradients_match_reference(backend, device, geom, shape, dtype):
    x = crandn(*shape, dtype=dtype, device=device, requires_grad=True)
    y, idx = run_on(backend, _pool, x, geom, True)
    y_ref, idx_ref = _ref_pool(x, geom, True)
    assert idx.dtype == torch.int64 and torch.equal(idx, idx_ref)
    assert torch.equal(y, y_ref)  # the original elements, bit for bit
    check_forward_backward(backend, lambda t: _pool(t, geom), lambda t: _ref_pool(t, geom), [x], dtype=dtype)


@pytest.mark.parametrize("geom", GEOMS)
def test_reference_matches_torch_max_pool_on_magnitude(geom):
    """Per-plane indices as torch.nn.MaxPool2d's (random data: no ties), and the output is the
    element at that index of ITS plane (batch * channels > 1: the known bug of indexing the
    flattened tensor with per-plane indices would fail here)."""
    x = crandn(3, 4, 9, 11, dtype=torch.complex128)
    k, s, p, d, c = geom
    _, idx_t = tF.max_pool2d(x.abs(), k, s, p, d, c, return_indices=True)
    y, idx = ref.complex_max_pool2d(x, k, s, p, d, c, return_indices=True)
    assert torch.equal(idx, idx_t)
    assert torch.equal(y, x.flatten(2).gather(2, idx_t.flatten(2)).view(idx_t.shape))


@pytest.mark.parametrize("geom", GEOMS[:3])
def test_gradcheck_complex128(backend, device, geom):
    x = crandn(2, 2, 5, 6, dtype=torch.complex128, device=device, requires_grad=True)
    # The Triton interpreter is slow per launch: fast mode (random projections) there.
    gradcheck(backend, lambda t: _pool(t, geom), [x], fast_mode=INTERPRETED_TRITON and backend == "triton")


def test_gradient_flows_to_the_argmax_only(backend, device):
    x = crandn(2, 3, 6, 8, device=device, requires_grad=True)
    y, idx = run_on(backend, F.complex_max_pool2d, x, 2, return_indices=True)
    g = crandn(*y.shape, device=device)
    (gx,) = torch.autograd.grad(y, x, g)
    expected = torch.zeros_like(x).flatten(2).scatter(2, idx.flatten(2), g.flatten(2)).view_as(x)
    assert torch.equal(gx, expected)


def test_ties_go_to_the_first(backend, device):
    # Keys exactly equal: |1|, |-1|, |i|, |-i| all give 1; 3+4i, 5, -5i, 4-3i all give 25.
    unit = torch.tensor([1, -1, 1j, -1j], dtype=torch.complex64)
    big = torch.tensor([3 + 4j, 5, -5j, 4 - 3j], dtype=torch.complex64)
    x = unit[torch.randint(0, 4, (2, 3, 6, 7))]
    x[0, 1, 2:4, 2:4] = big[torch.randint(0, 4, (2, 2))]  # a block of equal larger keys
    x = x.to(device)
    for geom in [(2, None, 0, 1, False), (3, 1, 1, 1, False), (2, 2, 1, 1, True)]:
        y, idx = run_on(backend, _pool, x, geom, True)
        y_ref, idx_ref = _ref_pool(x, geom, True)
        assert torch.equal(idx, idx_ref), geom
        assert torch.equal(y, y_ref), geom
    # 2x2 windows of equal keys: the top-left element of each window.
    y, idx = run_on(backend, F.complex_max_pool2d, x[:, :, :, :6], 2, return_indices=True)
    oh, ow = torch.meshgrid(torch.arange(3), torch.arange(3), indexing="ij")
    first = (2 * oh * 6 + 2 * ow).to(device)
    mask = torch.ones(2, 3, 3, 3, dtype=torch.bool, device=device)
    mask[0, 1, 1, 1] = False  # the window holding the 25s picks its first 25
    assert torch.equal(idx[mask], first.expand(2, 3, 3, 3)[mask])
    assert idx[0, 1, 1, 1] == 2 * 6 + 2


def test_nan_wins(backend, device):
    x = crandn(1, 2, 4, 4, device=device)
    x[0, 0, 1, 1] = complex(math.nan, 0.0)
    y, idx = run_on(backend, F.complex_max_pool2d, x, 2, return_indices=True)
    y_ref, idx_ref = ref.complex_max_pool2d(x, 2, return_indices=True)
    assert idx[0, 0, 0, 0] == 5 and torch.equal(idx, idx_ref)
    assert torch.isnan(y[0, 0, 0, 0].real)


def test_strided_and_unbatched_input(backend, device):
    x = strided(crandn(2, 3, 8, 10, device=device))
    assert_close(run_on(backend, F.complex_max_pool2d, x, 3, 2, 1), ref.complex_max_pool2d(x, 3, 2, 1))
    xp = crandn(2, 8, 10, 3, device=device).permute(0, 3, 1, 2)  # channels-last view
    assert torch.equal(run_on(backend, F.complex_max_pool2d, xp, 2), ref.complex_max_pool2d(xp, 2))
    x3 = crandn(3, 7, 7, device=device)
    y, idx = run_on(backend, F.complex_max_pool2d, x3, 2, return_indices=True)
    y4, idx4 = ref.complex_max_pool2d(x3.unsqueeze(0), 2, return_indices=True)
    assert y.shape == (3, 3, 3) and torch.equal(y, y4[0]) and torch.equal(idx, idx4[0])


def test_empty_batch(backend, device):
    x = crandn(0, 3, 6, 6, device=device, requires_grad=True)
    y, idx = run_on(backend, F.complex_max_pool2d, x, 2, return_indices=True)
    assert y.shape == (0, 3, 3, 3) and idx.shape == (0, 3, 3, 3)
    (gx,) = torch.autograd.grad(y, x, torch.zeros_like(y))
    assert gx.shape == x.shape


@pytest.mark.parametrize("requires_grad", [False, True])
@pytest.mark.parametrize("contiguous", [True, False])
def test_opcheck(backend, device, requires_grad, contiguous):
    if backend == "reference":
        pytest.skip("the reference is plain PyTorch, not a registered op")
    prefix = "triton_" if backend == "triton" else ""
    x = crandn(2, 3, 6, 7, device=device)
    x = x if contiguous else x.transpose(2, 3)
    x.requires_grad_(requires_grad)
    op = getattr(torch.ops.beamkernels, prefix + "complex_max_pool2d")
    opcheck(op, (x, [3, 2], [2, 1], [1, 0], [1, 2], True), backend)
    y, idx = op(x.detach(), [2, 2], [2, 2], [0, 0], [1, 1], False)
    bwd = getattr(torch.ops.beamkernels, prefix + "complex_max_pool2d_backward")
    opcheck(bwd, (crandn(*y.shape, device=device), idx, x.shape[2], x.shape[3]), backend)


def test_torch_compile_fullgraph(backend, device):
    skip_compile_if_interpreted(backend)
    torch._dynamo.reset()
    x = crandn(2, 3, 8, 9, device=device, requires_grad=True)

    def f(x):
        return F.complex_max_pool2d(x, 3, 2, 1).abs().sum()

    with beamkernels.use_backend(backend):
        compiled = torch.compile(f, fullgraph=True, backend="aot_eager" if device.type == "cpu" else "inductor")
        out = compiled(x)
        out.backward()
    x2 = x.detach().clone().requires_grad_(True)
    expected = ref.complex_max_pool2d(x2, 3, 2, 1).abs().sum()
    expected.backward()
    assert_close(out, expected, rtol=1e-4, atol=1e-4)
    assert_close(x.grad, x2.grad, rtol=1e-4, atol=1e-4)


def test_layer():
    x = crandn(2, 3, 8, 8)
    m = beamkernels.nn.ComplexMaxPool2d(3, 2, 1, return_indices=True)
    y, idx = m(x)
    y2, idx2 = F.complex_max_pool2d(x, 3, 2, 1, return_indices=True)
    assert torch.equal(y, y2) and torch.equal(idx, idx2)
    assert "kernel_size=3, stride=2, padding=1" in repr(m)
    assert beamkernels.nn.ComplexMaxPool2d(2)(x).shape == (2, 3, 4, 4)


def test_bad_input(backend, device):
    x = crandn(2, 3, 6, 6, device=device)
    with pytest.raises(TypeError, match=r"argument 'x' must be a complex tensor.*float32"):
        run_on(backend, F.complex_max_pool2d, x.real, 2)
    with pytest.raises(ValueError, match=r"must be \[N, C, H, W\] or unbatched \[C, H, W\], got shape \[6, 6\]"):
        run_on(backend, F.complex_max_pool2d, x[0, 0], 2)
    with pytest.raises(ValueError, match="nonzero C, H and W"):
        run_on(backend, F.complex_max_pool2d, x[:, :, :0], 2)
    with pytest.raises(ValueError, match=r"'kernel_size' must be >= 1, got 0"):
        run_on(backend, F.complex_max_pool2d, x, 0)
    with pytest.raises(TypeError, match=r"'stride' must be an int or a pair of ints, got 'a'"):
        run_on(backend, F.complex_max_pool2d, x, 2, "a")
    with pytest.raises(ValueError, match=r"'padding' must be at most half of kernel_size \[2, 2\], got \[2, 2\]"):
        run_on(backend, F.complex_max_pool2d, x, 2, 2, 2)
    with pytest.raises(ValueError, match="too small for kernel_size"):
        run_on(backend, F.complex_max_pool2d, x, 4, 1, 0, 3)


def test_compiled_op_errors_directly():
    """The C++ glue validates too (for callers of torch.ops.beamkernels.* directly), and a bad
    index raises instead of writing out of bounds."""
    if "cpu" not in beamkernels.available_backends():
        pytest.skip("extension not built")
    op = torch.ops.beamkernels.complex_max_pool2d
    with pytest.raises(RuntimeError, match="argument 'x' must be a complex tensor"):
        op(torch.randn(1, 1, 4, 4), [2, 2], [2, 2], [0, 0], [1, 1], False)
    with pytest.raises(RuntimeError, match="must be at most half of kernel_size"):
        op(crandn(1, 1, 4, 4), [2, 2], [2, 2], [2, 0], [1, 1], False)
    with pytest.raises(RuntimeError, match="too small"):
        op(crandn(1, 1, 2, 2), [3, 3], [1, 1], [0, 0], [1, 1], False)
    bwd = torch.ops.beamkernels.complex_max_pool2d_backward
    with pytest.raises(RuntimeError, match=r"indices are outside \[0, 16\)"):
        bwd(crandn(1, 1, 2, 2), torch.full((1, 1, 2, 2), 16, dtype=torch.int64), 4, 4)
    with pytest.raises(RuntimeError, match="'indices' must be int64"):
        bwd(crandn(1, 1, 2, 2), torch.zeros(1, 1, 2, 2, dtype=torch.int32), 4, 4)


def test_triton_backward_skips_out_of_plane_indices():
    """The Triton backward op (public as torch.ops.beamkernels.triton_complex_max_pool2d_backward)
    skips indices outside the plane, as the CUDA kernel does, instead of writing out of bounds."""
    from beamkernels.ops import _triton
    if not _triton.ENABLED or not (INTERPRETED_TRITON or torch.cuda.is_available()):
        pytest.skip("Triton runs neither on a GPU nor in the interpreter here")
    dev = "cuda" if torch.cuda.is_available() and not INTERPRETED_TRITON else "cpu"
    g = torch.tensor([[[[1 + 1j, 2 + 0j], [3j, 4 - 1j]]]], dtype=torch.complex64, device=dev)
    idx = torch.tensor([[[[-1, 16], [5, 0]]]], dtype=torch.int64, device=dev)
    gx = torch.ops.beamkernels.triton_complex_max_pool2d_backward(g, idx, 4, 4)
    want = torch.zeros(1, 1, 16, dtype=torch.complex64, device=dev)
    want[0, 0, 5], want[0, 0, 0] = 3j, 4 - 1j
    assert torch.equal(gx.reshape(1, 1, 16), want)
