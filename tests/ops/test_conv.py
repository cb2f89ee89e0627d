"""complex_conv2d / complex_conv1d / complex_conv_transpose2d on every backend that runs here:
forward and gradients vs the reference (torch's complex conv + the reference activation),
gradcheck (complex128), opcheck, torch.compile, the stride/padding/dilation/groups grid, 1x1
and non-square kernels, the thesis layer shapes, strided and empty inputs, and bad input."""

import math
import os
import subprocess
import sys

import pytest
import torch

import beamkernels
import beamkernels.functional as F
from beamkernels import reference as ref
from beamkernels import conv_tf32, conv_tf32_enabled
from tests.helpers import (
    INTERPRETED_TRITON, assert_close, crandn, gradcheck, opcheck, run_on, skip_compile_if_interpreted,
)

ACTS = [None, "crelu", "zrelu", "modrelu", "cardioid"]


# Tolerances: a conv output / gradient is a sum of L products (L = C_in / groups * kh * kw for y
# and dL/dx, N * Ho * Wo for dL/dW); float rounding grows like sqrt(L) times the typical magnitude.
# On a GPU, complex64 convs run on TF32 tensor cores by default, ours (cuda, triton) and torch's
# reference alike (torch.backends.cudnn.conv.fp32_precision / allow_tf32): inputs rounded to 10 mantissa bits (unit 2^-11),
# so each product is off by ~1e-3 relative and a sum of L of them by ~1e-3 sqrt(L) product sizes.
def conv_tol(dtype, reduction: int, tf32: bool = False) -> dict:
    if tf32:
        return dict(rtol=1e-2, atol=5e-3 * math.sqrt(max(reduction, 1)))
    eps = {torch.complex64: 1.2e-7, torch.complex128: 2.3e-16}[dtype]
    tol = 64 * eps * math.sqrt(max(reduction, 1))
    return dict(rtol=max(tol, 8 * eps), atol=max(tol, 8 * eps))


# (N, C_in, C_out, H, W, kernel, stride, padding, dilation, groups): the grid, kept small.
CASES = [
    (2, 3, 5, 6, 7, 3, 1, 1, 1, 1),                 # the default layer, odd sizes
    (2, 4, 6, 7, 9, (3, 2), 2, (1, 0), (2, 1), 2),  # non-square kernel, stride 2, dilation, groups
    (1, 5, 7, 5, 6, 1, 1, 0, 1, 1),                 # 1x1, batch 1, 5 -> 7
    (2, 6, 4, 8, 7, (2, 3), (2, 1), (0, 2), 1, 2),  # even kernel, mixed strides and paddings
    (2, 3, 6, 6, 7, 3, 3, 2, 2, 3),                 # depthwise-like, stride 3, dilation 2
    (1, 64, 4, 4, 5, 3, 2, 1, (1, 2), 2),           # 32 channels per group: the CPU's Gauss formulation
    (2, 16, 3, 5, 4, 3, 1, 1, 1, 1),                # 16 per group: CPU interleaved forward, Gauss backward
    (1, 33, 6, 19, 25, 3, 2, 2, 2, 1),              # CPU Gauss, stride 2, dilation 2, odd channels (10 x 12 out)
    (2, 6, 5, 4, 7, 1, 1, 0, 2, 1),                 # 1x1 with dilation 2: the CPU's pointwise GEMM path
    (2, 6, 5, 5, 7, 1, 2, 0, 1, 1),                 # 1x1 stride 2: not pointwise (subsampled)
]


def _tf32(backend, device, dtype=torch.complex64) -> bool:
    """Whether this comparison runs in TF32 on a GPU (see conv_tol); complex128 is always exact."""
    return dtype == torch.complex64 and device.type == "cuda" and conv_tf32_enabled()


def _inputs(case, dtype, device, activation, requires_grad=True, bias=True):
    n, cin, cout, h, w, k, s, p, d, g = case
    k = (k, k) if isinstance(k, int) else k
    x = crandn(n, cin, h, w, dtype=dtype, device=device, requires_grad=requires_grad)
    wt = crandn(cout, cin // g, *k, dtype=dtype, device=device, requires_grad=requires_grad) / math.sqrt(cin // g * k[0] * k[1])
    wt = wt.detach().requires_grad_(requires_grad)
    b = crandn(cout, dtype=dtype, device=device, requires_grad=requires_grad) if bias else None
    ab = None
    if activation == "modrelu":  # mixed signs: the dead zone |z| + b <= 0 is exercised
        ab = torch.linspace(-0.8, 0.4, cout, dtype=x.real.dtype, device=device).requires_grad_(requires_grad)
    return x, wt, b, ab, dict(stride=s, padding=p, dilation=d, groups=g)


def _compare(backend, fn, ref_fn, tensors, kw, dtype, reduction_y, reduction_w, tf32=False):
    a = [t.detach().clone().requires_grad_(t.requires_grad) if t is not None else None for t in tensors]
    b = [t.detach().clone().requires_grad_(t.requires_grad) if t is not None else None for t in tensors]
    y = run_on(backend, fn, *a, **kw)
    y_ref = ref_fn(*b, **kw)
    assert_close(y, y_ref, msg=f"forward ({backend})", **conv_tol(dtype, reduction_y, tf32))
    if y_ref.numel() == 0:
        return
    g = torch.randn_like(y_ref)
    ins = [t for t in a if t is not None and t.requires_grad]
    ins_ref = [t for t in b if t is not None and t.requires_grad]
    grads = torch.autograd.grad(y, ins, g)
    grads_ref = torch.autograd.grad(y_ref, ins_ref, g)
    names = ["x", "weight", "bias", "activation_bias"]
    for i, (gi, gr) in enumerate(zip(grads, grads_ref)):
        red = reduction_y if i == 0 else reduction_w
        assert_close(gi, gr, dtype=gr.dtype, msg=f"gradient of {names[i]} ({backend})", **conv_tol(dtype, red, tf32))


def _conv2d(x, w, b, ab, activation=None, **kw):
    return F.complex_conv2d(x, w, b, activation=activation, activation_bias=ab, **kw)


def _ref2d(x, w, b, ab, activation=None, **kw):
    return ref.complex_conv2d(x, w, b, activation=activation, activation_bias=ab, **kw)


def _reductions(case):
    n, cin, cout, h, w, k, s, p, d, g = case
    k = (k, k) if isinstance(k, int) else k
    return cin // g * k[0] * k[1], n * h * w


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("dtype", [torch.complex64, torch.complex128])
def test_conv2d_matches_reference(backend, device, case, dtype):
    # Each case with two activations (rotating), so that all five meet every kind of geometry.
    i = CASES.index(case)
    for activation in (ACTS[i % 5], ACTS[(i + 2) % 5]):
        x, w, b, ab, kw = _inputs(case, dtype, device, activation)
        ry, rw = _reductions(case)
        _compare(backend, lambda *t, **k: _conv2d(*t, activation=activation, **k),
                 lambda *t, **k: _ref2d(*t, activation=activation, **k), [x, w, b, ab], kw, dtype, ry, rw,
                 _tf32(backend, device, dtype))


@pytest.mark.parametrize("activation", ACTS)
def test_conv2d_all_activations(backend, device, activation):
    case = (2, 3, 5, 6, 7, 3, 1, 1, 1, 1)
    x, w, b, ab, kw = _inputs(case, torch.complex64, device, activation)
    _compare(backend, lambda *t, **k: _conv2d(*t, activation=activation, **k),
             lambda *t, **k: _ref2d(*t, activation=activation, **k), [x, w, b, ab], kw, torch.complex64,
             *_reductions(case), _tf32(backend, device))


@pytest.mark.parametrize("shape", [(2, 5, 16, 36, 144), (2, 64, 128, 4, 18)], ids=["L1", "L4"])
def test_thesis_layer_shapes(backend, device, shape):
    """The thesis layers: fused modReLU forward, and all gradients of the plain conv. (Gradients
    through an activation are not compared at this size: its derivative jumps at the kinks,
    |z| + b = 0 for modReLU, so a rounding-level difference in z flips a few elements; the small
    cases above cover the fused backward.)"""
    if backend == "triton" and INTERPRETED_TRITON:
        pytest.skip("layer-sized shapes are too slow in the Triton interpreter (small shapes cover it)")
    n, cin, cout, h, w = shape
    case = (n, cin, cout, h, w, 3, 1, 1, 1, 1)
    x, wt, b, ab, kw = _inputs(case, torch.complex64, device, "modrelu", requires_grad=False)
    tol = conv_tol(torch.complex64, 9 * cin, _tf32(backend, device))
    y = run_on(backend, _conv2d, x, wt, b, ab, activation="modrelu", **kw)
    assert_close(y, _ref2d(x, wt, b, ab, activation="modrelu", **kw), msg="forward with modReLU", **tol)
    x, wt, b, _, kw = _inputs(case, torch.complex64, device, None)
    _compare(backend, _conv2d, _ref2d, [x, wt, b, None], kw, torch.complex64, *_reductions(case),
             _tf32(backend, device))


def _gradcheck_mode(backend):
    # The interpreter runs each Triton launch in Python: check one random direction (fast_mode).
    return dict(fast_mode=True) if backend == "triton" and INTERPRETED_TRITON else {}


# 3x3 stride 2; and 1x1 / stride 1 / no padding / one group (the CPU's batched complex GEMM path).
@pytest.mark.parametrize("case,activation", [((1, 2, 3, 4, 5, 3, 2, 1, 1, 1), a) for a in (None, "modrelu", "cardioid")]
                         + [((2, 3, 4, 3, 5, 1, 1, 0, 1, 1), a) for a in (None, "modrelu")]
                         + [((1, 16, 3, 5, 6, 3, 1, 1, 1, 1), "modrelu")]  # CPU Gauss backward
                         + [((1, 4, 3, 4, 22, 3, 1, 1, 1, 1), "modrelu")])  # CPU Winograd forward, dL/dx, dL/dW
def test_conv2d_gradcheck_complex128(backend, device, case, activation):
    x, w, b, ab, kw = _inputs(case, torch.complex128, device, activation)
    tensors = [t for t in (x, w, b, ab) if t is not None]

    def fn(x, w, b, *rest):
        return F.complex_conv2d(x, w, b, activation=activation, activation_bias=rest[0] if rest else None, **kw)

    gradcheck(backend, fn, tensors, **_gradcheck_mode(backend))


def test_conv2d_strided_inputs(backend, device):
    case = (2, 4, 6, 5, 7, 3, 1, 1, 1, 2)
    x, w, b, ab, kw = _inputs(case, torch.complex64, device, "modrelu", requires_grad=False)
    xs = crandn(2, 5, 7, 4, device=device).permute(0, 3, 2, 1)  # [2, 4, 7, 5], channels-last-like
    xs = xs.transpose(2, 3)                                       # [2, 4, 5, 7], non-contiguous
    ws = (crandn(6, 3, 2, 3, device=device).transpose(2, 3) / 3)[:, :2]  # [6, 2, 3, 2], sliced + transposed
    assert not xs.is_contiguous() and not ws.is_contiguous()
    y = run_on(backend, _conv2d, xs, ws, b, ab, activation="modrelu", **kw)
    assert_close(y, _ref2d(xs, ws, b, ab, activation="modrelu", **kw), **conv_tol(torch.complex64, 18, _tf32(backend, device)))


@pytest.mark.parametrize("k", [3, 1])
def test_conv2d_empty_batch(backend, device, k):
    case = (0, 3, 5, 6, 7, k, 1, k // 2, 1, 1)
    x, w, b, ab, kw = _inputs(case, torch.complex64, device, "modrelu")
    y = run_on(backend, _conv2d, x, w, b, ab, activation="modrelu", **kw)
    assert y.shape == (0, 5, 6, 7)
    gx, gw, gb, gab = torch.autograd.grad(y, [x, w, b, ab], torch.zeros_like(y))
    assert gx.shape == x.shape and torch.count_nonzero(gw) == 0 and torch.count_nonzero(gb) == 0
    assert torch.count_nonzero(gab) == 0


def test_conv2d_no_input_grad(backend, device):
    """x without requires_grad: the backward skips dL/dx and still gives the parameter grads."""
    case = (2, 3, 5, 6, 7, 3, 1, 1, 1, 1)
    x, w, b, ab, kw = _inputs(case, torch.complex64, device, "cardioid")
    _compare(backend, lambda *t, **k: _conv2d(*t, activation="cardioid", **k),
             lambda *t, **k: _ref2d(*t, activation="cardioid", **k), [x.detach(), w, b, None], kw,
             torch.complex64, *_reductions(case), _tf32(backend, device))



def test_conv2d_input_grad_only(backend, device):
    """Frozen weight and bias: only dL/dx (16 channels: the CPU's Gauss backward, which then skips
    the weight-gradient inputs)."""
    case = (2, 16, 3, 5, 4, 3, 1, 1, 1, 1)
    x, w, b, ab, kw = _inputs(case, torch.complex64, device, "modrelu")
    _compare(backend, lambda *t, **k: _conv2d(*t, activation="modrelu", **k),
             lambda *t, **k: _ref2d(*t, activation="modrelu", **k), [x, w.detach(), b.detach(), ab.detach()], kw,
             torch.complex64, *_reductions(case), _tf32(backend, device))

def test_conv2d_padding_strings(backend, device):
    x = crandn(2, 3, 6, 7, device=device)
    w = crandn(4, 3, 2, 3, device=device)
    for padding in ("same", "valid"):
        y = run_on(backend, F.complex_conv2d, x, w, padding=padding, dilation=(2, 1))
        assert_close(y, ref.complex_conv2d(x, w, padding=padding, dilation=(2, 1)),
                     **conv_tol(torch.complex64, 18, _tf32(backend, device)))


def _op_name(backend):
    return "triton_complex_conv2d" if backend == "triton" else "complex_conv2d"


@pytest.mark.parametrize("requires_grad", [False, True])
@pytest.mark.parametrize("contiguous", [True, False])
def test_opcheck(backend, device, requires_grad, contiguous):
    if backend == "reference":
        pytest.skip("the reference is plain PyTorch, not a registered op")
    x = crandn(2, 3, 7, 6, device=device)
    x = x if contiguous else x.transpose(2, 3)
    w = crandn(4, 3, 3, 2, device=device)
    w = w if contiguous else w.transpose(2, 3)
    b = crandn(4, device=device)
    ab = torch.linspace(-0.5, 0.5, 4, device=device)
    for t in (x, w, b, ab):
        t.requires_grad_(requires_grad)
    op = getattr(torch.ops.beamkernels, _op_name(backend))
    opcheck(op, (x, w, b, [1, 2], [1, 0], [1, 1], 1, 3, ab), backend)
    opcheck(op, (x, w, None, [2, 1], [0, 1], [2, 1], 1, 0, None), backend)
    w1 = crandn(4, 3, 1, 1, device=device, requires_grad=requires_grad)  # 1x1: the CPU's pointwise GEMM path
    opcheck(op, (x, w1, b, [1, 1], [0, 0], [1, 1], 1, 3, ab), backend)


def test_torch_compile_fullgraph(backend, device):
    skip_compile_if_interpreted(backend)
    torch._dynamo.reset()
    case = (2, 3, 5, 6, 7, 3, 1, 1, 1, 1)
    x, w, b, ab, kw = _inputs(case, torch.complex64, device, "modrelu")

    def f(x, w, b, ab):
        return F.complex_conv2d(x, w, b, activation="modrelu", activation_bias=ab, **kw).abs().sum()

    with beamkernels.use_backend(backend):
        compiled = torch.compile(f, fullgraph=True, backend="aot_eager" if device.type == "cpu" else "inductor")
        out = compiled(x, w, b, ab)
        grads = torch.autograd.grad(out, [x, w, b, ab])
    t = [v.detach().clone().requires_grad_(True) for v in (x, w, b, ab)]
    expected = ref.complex_conv2d(t[0], t[1], t[2], activation="modrelu", activation_bias=t[3], **kw).abs().sum()
    grads_ref = torch.autograd.grad(expected, t)
    tol = dict(rtol=1e-3, atol=1e-3)
    assert_close(out, expected, **tol)
    for gi, gr in zip(grads, grads_ref):
        assert_close(gi, gr, **tol)


# The CPU runs Gauss's real convs on channels-last planes from 2048 input pixels (conv_glue.cpp:
# gauss_nhwc): its split / epilogue / prologue / combine passes work on 64-pixel tiles with 8 x 8
# register transposes, so sizes here leave partial tiles and channel counts not multiples of 8.
@pytest.mark.parametrize("case", [(2, 33, 20, 45, 47, 3, 1, 2, 2, 1),  # Gauss fwd + bwd (dilation 2: not Winograd)
                                  (1, 18, 11, 40, 61, 3, 2, 1, (1, 2), 1),  # interleaved forward, Gauss backward
                                  (1, 36, 14, 50, 41, (3, 1), 1, (1, 0), 1, 2)],
                         ids=["33-20", "stride2-dil", "groups2"])
@pytest.mark.parametrize("dtype", [torch.complex64, torch.complex128])
def test_conv2d_cpu_channels_last_gauss(case, dtype):
    device = torch.device("cpu")
    if "cpu" not in beamkernels.available_backends(device):
        pytest.skip("the CPU backend is not built here")
    x, w, b, ab, kw = _inputs(case, dtype, device, "modrelu")
    ry, rw = _reductions(case)
    # dL/dW sums ~4000 products here, and Gauss's d1 - d2 - d3 cancels: its rounding follows the
    # size of the three real gradients, a few times the result's (complex128: 1.6e-12 relative seen)
    rw *= 16
    _compare("cpu", lambda *t, **k: _conv2d(*t, activation="modrelu", **k),
             lambda *t, **k: _ref2d(*t, activation="modrelu", **k), [x, w, b, ab], kw, dtype, ry, rw)
    # input layer: no dL/dx
    x.requires_grad_(False)
    _compare("cpu", _conv2d, _ref2d, [x, w, b, None], kw, dtype, ry, rw)


# The CPU runs 3x3 stride-1 one-group forwards with Winograd's F(2x2, 3x3) (csrc/cpu/conv_winograd.cpp)
# when a row of 2x2 output tiles fills >= 2/3 of its SIMD vectors (conv_glue.cpp: winograd; 16 tiles
# per vector for complex64 on an AVX-512 CPU (build_info()["cpu_winograd_lanes"]), else 8), their
# dL/dx (a 3x3 stride-1 conv of dL/dz, read from the backward's planes: interleaved formulation or
# Gauss's) when that conv passes the same rule and padding <= 2, and their dL/dW (winograd_dw: 8 lanes) for
# 4 <= C_in < 16. Sizes here take the forward path at 8 and 16 lanes (11, 12 or 22 tiles per row;
# checked below; all but odd-pad the dL/dx one too, all with 4 to 15 input channels the dL/dW one)
# and leave partial tiles (odd Ho / Wo), partial vectors, partial register blocks (4 output channels
# forward; 2 x 2 channels in dL/dW), odd and large paddings, a single row of tiles and many input
# channels. On an AVX-512 CPU test_conv2d_cpu_winograd_8_lanes reruns them on the 8-lane kernels.
WINOGRAD_CASES = [(2, 5, 16, 36, 44, 3, 1, 1, 1, 1),      # the thesis's L1, narrower
                  (3, 4, 7, 7, 21, 3, 1, 1, 1, 1),        # Ho 7, Wo 21: 11 tiles; 7 = 4 + 3 channels
                  (1, 5, 5, 6, 39, 3, 1, (0, 3), 1, 1),   # odd pad_w, Wo = 43: 22 tiles, the last vector partial
                  (2, 40, 9, 5, 21, 3, 1, (2, 1), 1, 1),  # pad_h 2 > 1, many channels
                  (1, 4, 1, 3, 21, 3, 1, (0, 1), 1, 1),   # one output row (half a tile row), one output channel
                  (2, 20, 6, 9, 24, 3, 1, 1, 1, 1)]       # Gauss backward (20 channels): dL/dx from its planes
WINOGRAD_IDS = ["L1-narrow", "odd-out", "odd-pad", "cin40", "one-row", "gauss-bwd"]


def _winograd_lanes() -> int:
    return beamkernels.build_info().get("cpu_winograd_lanes", 8)


def _takes_winograd(case, dx: bool = False, dw: bool = False, dtype=torch.complex64) -> bool:
    """Mirror of conv_glue.cpp's winograd() (dx: winograd_dx(); dw: winograd_dw()): guards these
    tests against a rule change that would silently route them elsewhere. Not mirrored: the 2 MB
    scratch caps and dL/dx's C_in C_out <= 4096, far above these cases."""
    n, cin, cout, h, w, k, s, p, d, g = case
    ph, pw = (p, p) if isinstance(p, int) else p
    wo = w if dx else w + 2 * pw - 2
    if dx and max(ph, pw) > 2:
        return False
    if dw and not 4 <= cin < 16:
        return False
    # complex128 and the weight gradient run 8 lanes everywhere
    tiles, lanes = (wo + 1) // 2, 8 if dw or dtype == torch.complex128 else _winograd_lanes()
    return k == 3 and s == 1 and d == 1 and g == 1 and 3 * tiles >= 2 * (-(-tiles // lanes) * lanes)


@pytest.mark.parametrize("case", WINOGRAD_CASES, ids=WINOGRAD_IDS)
@pytest.mark.parametrize("dtype", [torch.complex64, torch.complex128])
def test_conv2d_cpu_winograd(case, dtype):
    device = torch.device("cpu")
    if "cpu" not in beamkernels.available_backends(device):
        pytest.skip("the CPU backend is not built here")
    assert _takes_winograd(case, dtype=dtype) and _takes_winograd(case, dx=True, dtype=dtype) == (case[7] != (0, 3))
    assert _takes_winograd(case, dw=True, dtype=dtype) == (case[1] < 16)
    for activation in ("modrelu", None, "cardioid"):
        x, w, b, ab, kw = _inputs(case, dtype, device, activation)
        ry, rw = _reductions(case)
        # Winograd's transforms add and halve before the products: ~2x a direct sum's rounding in z;
        # the gradients evaluate the activation's derivative (modReLU's b / |z| terms) at that z.
        _compare("cpu", lambda *t, **k: _conv2d(*t, activation=activation, **k),
                 lambda *t, **k: _ref2d(*t, activation=activation, **k), [x, w, b, ab], kw, dtype, 4 * ry, 4 * rw)


def test_conv2d_cpu_winograd_8_lanes():
    """An AVX-512 CPU runs the forward and dL/dx on 16-tile vectors; the 8-tile kernels (AVX2
    machines' path) get the same cases in a process started with BEAMKERNELS_CPU_WINOGRAD_LANES=8."""
    if "cpu" not in beamkernels.available_backends(torch.device("cpu")):
        pytest.skip("the CPU backend is not built here")
    if _winograd_lanes() == 8:
        pytest.skip("this CPU runs the 8-lane Winograd kernels already (test_conv2d_cpu_winograd)")
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = dict(os.environ, BEAMKERNELS_CPU_WINOGRAD_LANES="8")
    code = ("import beamkernels, sys; lanes = beamkernels.build_info()['cpu_winograd_lanes']; "
            "sys.exit(0 if lanes == 8 else f'BEAMKERNELS_CPU_WINOGRAD_LANES=8 gave {lanes} lanes')")
    r = subprocess.run([sys.executable, "-c", code], cwd=root, env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr + r.stdout
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                        "tests/ops/test_conv.py::test_conv2d_cpu_winograd"], cwd=root, env=env,
                       capture_output=True, text=True)
    assert r.returncode == 0 and " passed" in r.stdout, r.stdout[-3000:] + r.stderr[-3000:]


def test_cpu_winograd_lanes_env_rejects_bad_values():
    if "cpu" not in beamkernels.available_backends(torch.device("cpu")):
        pytest.skip("the CPU backend is not built here")
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    bad = [("4", "BEAMKERNELS_CPU_WINOGRAD_LANES must be 8 or 16; got '4'")]
    if _winograd_lanes() == 8:
        bad.append(("16", "BEAMKERNELS_CPU_WINOGRAD_LANES=16 needs a CPU with AVX-512"))
    for value, msg in bad:
        r = subprocess.run([sys.executable, "-c", "import beamkernels"], cwd=root, capture_output=True, text=True,
                           env=dict(os.environ, BEAMKERNELS_CPU_WINOGRAD_LANES=value))
        assert r.returncode != 0 and msg in r.stderr, r.stderr[-2000:]


# Inference (grad mode off, or no input requiring a gradient) skips writing the pre-activation z:
# each CPU formulation (Winograd, interleaved, Gauss planar and channels-last, pointwise) must give
# the same y either way.
@pytest.mark.parametrize("case", [(2, 5, 6, 7, 24, 3, 1, 1, 1, 1),          # Winograd (cpu)
                                  (2, 5, 6, 7, 9, 3, 2, 1, 1, 1),           # interleaved
                                  (1, 33, 6, 9, 10, 3, 2, 1, 1, 1),         # Gauss
                                  (1, 33, 6, 48, 45, (3, 1), 1, (1, 0), 1, 1),  # Gauss, channels-last
                                  (2, 6, 5, 4, 7, 1, 1, 0, 1, 1)],          # pointwise
                         ids=["winograd", "interleaved", "gauss", "gauss-nhwc", "pointwise"])
def test_conv2d_inference_matches_training_forward(backend, device, case):
    x, w, b, ab, kw = _inputs(case, torch.complex64, device, "modrelu")
    y_train = run_on(backend, _conv2d, x, w, b, ab, activation="modrelu", **kw)
    with torch.no_grad():
        y_nograd = run_on(backend, _conv2d, x, w, b, ab, activation="modrelu", **kw)
    y_frozen = run_on(backend, _conv2d, *(t.detach() for t in (x, w, b, ab)), activation="modrelu", **kw)
    assert y_train.requires_grad and not y_nograd.requires_grad and not y_frozen.requires_grad
    torch.testing.assert_close(y_nograd, y_train.detach(), rtol=0, atol=0)
    torch.testing.assert_close(y_frozen, y_train.detach(), rtol=0, atol=0)


def test_conv2d_vmap_backward_keeps_z(backend, device):
    """Under torch.vmap a batched tensor reports requires_grad False while autograd still records
    the op below the vmap level: the forward must keep z for the backward (model ensembling with
    torch.func.stack_module_state + functional_call, as a user would write it)."""
    from torch.func import functional_call, stack_module_state

    import beamkernels.nn as bnn

    models = [bnn.ComplexConv2d(3, 4, 3, padding=1, activation="modrelu").to(device) for _ in range(2)]
    params, buffers = stack_module_state(models)
    x = crandn(2, 3, 6, 7, device=device)

    def one(p, b, xx):
        return functional_call(models[0], (p, b), (xx,))

    with beamkernels.use_backend(backend):
        y = torch.vmap(one, in_dims=(0, 0, None))(params, buffers, x)
        y.abs().sum().backward()
    y_ref = torch.stack([m(x) for m in models])  # backend auto, per model
    for m in models:
        y_ref_m = m(x)
        y_ref_m.abs().sum().backward()
    assert_close(y.detach(), y_ref.detach(), **conv_tol(torch.complex64, 27))
    assert_close(params["weight"].grad, torch.stack([m.weight.grad for m in models]), **conv_tol(torch.complex64, 84))


# The CUDA backend's tensor-core dL/dx (csrc/cuda/conv_glue.cpp) rests on this identity, checked here
# with torch's own convs on the CPU: for stride 1, dL/dx is the forward conv of dL/dz with the weight
# conjugated, flipped in space and with in / out channels swapped per group, padding (k - 1) d - pad
# (negative: crop instead).
@pytest.mark.parametrize("geom", [(3, 1, 1, 1), ((3, 2), (1, 0), (2, 1), 2), (3, 2, 1, 3), (1, 0, 1, 1), (3, 3, 1, 1)],
                         ids=["3x3", "3x2-dil-groups", "pad2-groups3", "1x1", "pad-beyond-kernel"])
def test_dx_is_conv_with_flipped_conjugate_weight(geom):
    k, pad, dil, groups = geom
    kh, kw = (k, k) if isinstance(k, int) else k
    ph, pw = (pad, pad) if isinstance(pad, int) else pad
    dh, dw = (dil, dil) if isinstance(dil, int) else dil
    cin, cout, n, h, w = 6, 12, 2, 7, 8
    x = crandn(n, cin, h, w, dtype=torch.complex128, requires_grad=True)
    wt = crandn(cout, cin // groups, kh, kw, dtype=torch.complex128)
    y = torch.nn.functional.conv2d(x, wt, None, 1, (ph, pw), (dh, dw), groups)
    gz = crandn(*y.shape, dtype=torch.complex128)
    (expected,) = torch.autograd.grad(y, x, gz)
    og, cg = cout // groups, cin // groups
    w_t = wt.view(groups, og, cg, kh, kw).transpose(1, 2).flip(3, 4).conj().reshape(cin, og, kh, kw)
    qh, qw = (kh - 1) * dh - ph, (kw - 1) * dw - pw
    g = torch.nn.functional.pad(gz, (max(qw, 0), max(qw, 0), max(qh, 0), max(qh, 0)))
    got = torch.nn.functional.conv2d(g, w_t, None, 1, 0, (dh, dw), groups)
    got = got[..., max(-qh, 0):max(-qh, 0) + h, max(-qw, 0):max(-qw, 0) + w]
    assert_close(got, expected)


def test_conv_tf32_switch_follows_torch():
    """conv_tf32_enabled reads torch's conv setting (new and old API) without raising when the conv
    and RNN settings differ; conv_tf32 sets and restores it."""
    before = conv_tf32_enabled()
    with conv_tf32(False):
        assert not conv_tf32_enabled()
        with conv_tf32(True):
            assert conv_tf32_enabled()
        assert not conv_tf32_enabled()
    assert conv_tf32_enabled() == before
    old = torch.backends.cudnn.allow_tf32
    try:
        torch.backends.cudnn.allow_tf32 = False
        assert not conv_tf32_enabled()
        torch.backends.cudnn.allow_tf32 = True
        assert conv_tf32_enabled()
    finally:
        torch.backends.cudnn.allow_tf32 = old


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU (TF32 / exact fp32 paths of the cuda backend)")
@pytest.mark.parametrize("tf32", [True, False])
def test_cuda_tf32_switch(tf32):
    """torch's conv precision setting chooses the cuda backend's GEMMs as it does torch's convs: TF32
    tensor cores when on (sm_80+), exact fp32 when off; each against the reference in the same mode."""
    if "cuda" not in beamkernels.available_backends():
        pytest.skip("cuda backend not built")
    with conv_tf32(tf32):
        device = torch.device("cuda")
        tf32 = tf32 and torch.cuda.get_device_capability()[0] >= 8
        for case in [(4, 16, 32, 18, 72, 3, 1, 1, 1, 1), (2, 6, 5, 9, 11, 3, 2, 1, 1, 1), (2, 8, 12, 9, 7, 3, 1, 2, 2, 4)]:
            x, w, b, ab, kw = _inputs(case, torch.complex64, device, "modrelu")
            _compare("cuda", lambda *t, **k: _conv2d(*t, activation="modrelu", **k),
                     lambda *t, **k: _ref2d(*t, activation="modrelu", **k), [x, w, b, ab], kw, torch.complex64,
                     *_reductions(case), tf32)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU (the cuda backend's split-K dL/dW)")
def test_cuda_deterministic_weight_grad():
    """Under torch.use_deterministic_algorithms the TF32 dL/dW takes one split: bitwise repeatable."""
    if "cuda" not in beamkernels.available_backends():
        pytest.skip("cuda backend not built")
    x, w, b, ab, kw = _inputs((8, 16, 32, 36, 72, 3, 1, 1, 1, 1), torch.complex64, torch.device("cuda"), None)
    old = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        grads = [torch.autograd.grad(run_on("cuda", _conv2d, x, w, None, None, **kw).abs().sum(), w)[0]
                 for _ in range(2)]
    finally:
        torch.use_deterministic_algorithms(old)
    assert torch.equal(grads[0], grads[1])


# ---- conv1d ----
@pytest.mark.parametrize("case", [(2, 3, 5, 11, 3, 1, 1, 1, 1), (1, 4, 6, 13, 4, 2, 2, 3, 2), (2, 5, 7, 9, 1, 1, 0, 1, 1)])
@pytest.mark.parametrize("activation", [None, "modrelu"])
def test_conv1d_matches_reference(backend, device, case, activation):
    n, cin, cout, length, k, s, p, d, g = case
    x = crandn(n, cin, length, device=device, requires_grad=True)
    w = (crandn(cout, cin // g, k, device=device) / math.sqrt(cin // g * k)).requires_grad_(True)
    b = crandn(cout, device=device, requires_grad=True)
    ab = torch.linspace(-0.8, 0.4, cout, device=device).requires_grad_(True) if activation == "modrelu" else None
    kw = dict(stride=s, padding=p, dilation=d, groups=g)
    _compare(backend, lambda x, w, b, ab, **k: F.complex_conv1d(x, w, b, activation=activation, activation_bias=ab, **k),
             lambda x, w, b, ab, **k: ref.complex_conv1d(x, w, b, activation=activation, activation_bias=ab, **k),
             [x, w, b, ab], kw, torch.complex64, cin // g * k, n * length, _tf32(backend, device))


def test_conv1d_gradcheck_complex128(backend, device):
    x = crandn(2, 2, 7, dtype=torch.complex128, device=device, requires_grad=True)
    w = crandn(3, 2, 3, dtype=torch.complex128, device=device, requires_grad=True)
    b = crandn(3, dtype=torch.complex128, device=device, requires_grad=True)
    gradcheck(backend, lambda x, w, b: F.complex_conv1d(x, w, b, stride=2, padding=1, activation="cardioid"), [x, w, b],
              **_gradcheck_mode(backend))


# ---- conv_transpose2d ----


# (N, C_in, C_out, H, W, kernel, stride, padding, output_padding, groups, dilation); the third has
# padding > dilation * (k - 1) (the stride-1 rewrite crops); the fourth output_padding >= stride
# (allowed by dilation: the cpu/cuda block-real path falls back to the stride-1 rewrite); the last
# is the U-Net's 2x2 stride-2 upsampling with an odd width.
@pytest.mark.parametrize("case", [(2, 3, 5, 4, 5, 3, 2, 1, 1, 1, 1), (1, 4, 6, 5, 3, (2, 3), (2, 1), (1, 0), (1, 0), 2, 2),
                                  (2, 3, 4, 4, 5, 2, 2, 2, 0, 1, 1), (1, 2, 3, 4, 3, 3, 1, 1, 1, 1, 2),
                                  (2, 6, 3, 3, 5, 2, 2, 0, 0, 1, 1)])
@pytest.mark.parametrize("activation", [None, "modrelu"])
def test_conv_transpose2d_matches_torch(backend, device, case, activation):
    n, cin, cout, h, w_, k, s, p, op, g, d = case
    k = (k, k) if isinstance(k, int) else k
    x = crandn(n, cin, h, w_, device=device, requires_grad=True)
    w = crandn(cin, cout // g, *k, device=device, requires_grad=True)
    b = crandn(cout, device=device, requires_grad=True)
    ab = torch.linspace(-0.8, 0.4, cout, device=device).requires_grad_(True) if activation == "modrelu" else None
    kw = dict(stride=s, padding=p, output_padding=op, groups=g, dilation=d)
    def torch_t(x, w, b, ab, **kw):
        z = torch.nn.functional.conv_transpose2d(x, w, b, kw["stride"], kw["padding"], kw["output_padding"],
                                                 kw["groups"], kw["dilation"])
        return ref.modrelu(z, ab) if activation == "modrelu" else z

    def ours(x, w, b, ab, **kw):
        return F.complex_conv_transpose2d(x, w, b, activation=activation, activation_bias=ab, **kw)

    red = cin // g * k[0] * k[1]
    _compare(backend, ours, torch_t, [x, w, b, ab], kw, torch.complex64, red, n * h * w_ * red,
             _tf32(backend, device))
    z = torch.nn.functional.conv_transpose2d(x, w, b, s, p, op, g, d)
    # It is the adjoint (transpose) of conv2d: <conv_t(x), u> = <x, conv2d(u)> without conjugation.
    if activation is None and g == 1 and d == 1:
        u = crandn(*z.shape, device=device)
        lhs = (torch.nn.functional.conv_transpose2d(x, w, None, s, p, op, g, d) * u).sum()
        rhs = (x * ref.complex_conv2d(u, w, None, s, p, 1, 1)).sum()
        assert_close(lhs, rhs, rtol=1e-4, atol=1e-3)


# (stride, output_padding, dilation): the block-real transposed conv (cpu/cuda) and the stride-1 rewrite.
@pytest.mark.parametrize("geom", [((2, 2), (1, 0), (1, 1)), ((1, 1), (1, 1), (2, 2))])
def test_conv_transpose2d_gradcheck_complex128(backend, device, geom):
    s, op, d = geom
    x = crandn(1, 2, 3, 4, dtype=torch.complex128, device=device, requires_grad=True)
    w = crandn(2, 3, 2, 3, dtype=torch.complex128, device=device, requires_grad=True)
    b = crandn(3, dtype=torch.complex128, device=device, requires_grad=True)
    ab = torch.linspace(-0.3, 0.2, 3, dtype=torch.float64, device=device).requires_grad_(True)

    def fn(x, w, b, ab):
        return F.complex_conv_transpose2d(x, w, b, stride=s, padding=1, output_padding=op, dilation=d,
                                          activation="modrelu", activation_bias=ab)

    gradcheck(backend, fn, [x, w, b, ab], **_gradcheck_mode(backend))


def test_conv_transpose2d_kernel_is_stride_gradcheck_complex128(backend, device):
    # kernel == stride, no padding: the cpu backend's GEMM + pixel-shuffle path (non-square tiles).
    x = crandn(2, 2, 3, 4, dtype=torch.complex128, device=device, requires_grad=True)
    w = crandn(2, 3, 2, 3, dtype=torch.complex128, device=device, requires_grad=True)
    b = crandn(3, dtype=torch.complex128, device=device, requires_grad=True)

    def fn(x, w, b):
        return F.complex_conv_transpose2d(x, w, b, stride=(2, 3))

    gradcheck(backend, fn, [x, w, b], **_gradcheck_mode(backend))


def test_conv_transpose2d_torch_compile_fullgraph(backend, device):
    skip_compile_if_interpreted(backend)
    torch._dynamo.reset()
    x = crandn(2, 4, 3, 5, device=device, requires_grad=True)
    w = crandn(4, 2, 2, 2, device=device, requires_grad=True)
    b = crandn(2, device=device, requires_grad=True)

    def f(x, w, b):
        return F.complex_conv_transpose2d(x, w, b, stride=2, activation="cardioid").abs().sum()

    with beamkernels.use_backend(backend):
        compiled = torch.compile(f, fullgraph=True, backend="aot_eager" if device.type == "cpu" else "inductor")
        out = compiled(x, w, b)
        grads = torch.autograd.grad(out, [x, w, b])
    t = [v.detach().clone().requires_grad_(True) for v in (x, w, b)]
    expected = ref.complex_conv_transpose2d(t[0], t[1], t[2], 2, activation="cardioid").abs().sum()
    grads_ref = torch.autograd.grad(expected, t)
    assert_close(out, expected, rtol=1e-3, atol=1e-3)
    for gi, gr in zip(grads, grads_ref):
        assert_close(gi, gr, rtol=1e-3, atol=1e-3)


# Layouts and corner cases on the paths other than kernel == stride (cpu/cuda: one real transposed
# conv on a planar copy of x): a channels-last x, a conjugate view, an empty batch's backward, and
# groups; values and gradients against torch's own complex conv_transpose2d.
@pytest.mark.parametrize("layout", ["channels_last", "conj", "empty", "groups"])
def test_conv_transpose2d_layouts(backend, device, layout):
    n, cin, cout, g = (0 if layout == "empty" else 2), 4, 6, (2 if layout == "groups" else 1)
    x0 = crandn(n, cin, 4, 5, device=device)
    if layout == "channels_last":
        x0 = x0.contiguous(memory_format=torch.channels_last)
    w = crandn(cin, cout // g, 3, 3, device=device, requires_grad=True)
    x = x0.detach().requires_grad_(True)
    xt, wt = x0.detach().clone().requires_grad_(True), w.detach().clone().requires_grad_(True)
    kw = dict(stride=2, padding=1, output_padding=1, groups=g)
    with beamkernels.use_backend(backend):
        y = F.complex_conv_transpose2d(x.conj() if layout == "conj" else x, w, **kw)
    r = torch.nn.functional.conv_transpose2d(xt.conj() if layout == "conj" else xt, wt, **kw)
    assert y.shape == r.shape
    assert_close(y, r, rtol=1e-4, atol=1e-4)
    gy = crandn(*r.shape, device=device)
    gx, gw = torch.autograd.grad(y, [x, w], gy)
    rx, rw = torch.autograd.grad(r, [xt, wt], gy)
    assert_close(gx, rx, rtol=1e-4, atol=1e-4)
    assert_close(gw, rw, rtol=1e-4, atol=1e-4)


def test_conv_transpose2d_compile_recompiles_for_a_new_shape(backend, device):
    # The second shape makes torch.compile retrace with dynamic shapes (Inductor on the CPU too):
    # an interleaved view_as_real / permute input to the real transposed conv failed there.
    skip_compile_if_interpreted(backend)
    torch._dynamo.reset()
    m = beamkernels.nn.ComplexConvTranspose2d(4, 6, 3, stride=2, padding=1, output_padding=1, groups=2).to(device)
    with beamkernels.use_backend(backend):
        cm = torch.compile(m, fullgraph=True)
        for shape in [(2, 4, 4, 4), (3, 4, 5, 6)]:
            x = crandn(*shape, device=device)
            y = cm(x)
            assert_close(y, m(x), rtol=1e-4, atol=1e-4)
            y.abs().sum().backward()
    torch._dynamo.reset()


def test_conv2d_many_tiles_and_groups(backend, device):
    """Groups x several row tiles x several channel tiles in every kernel (the Triton kernels flatten
    all three onto grid axis 0 and unflatten them; 16-wide tiles in the interpreter): 3 groups of
    20 -> 20 channels (two column tiles) over 2 x 5 x 7 = 70 output pixels (five row tiles)."""
    case = (2, 60, 60, 5, 7, 3, 1, 1, 1, 3)
    for activation in (None, "modrelu"):
        x, w, b, ab, kw = _inputs(case, torch.complex64, device, activation)
        ry, rw = _reductions(case)
        _compare(backend, lambda *t, **k: _conv2d(*t, activation=activation, **k),
                 lambda *t, **k: _ref2d(*t, activation=activation, **k), [x, w, b, ab], kw, torch.complex64, ry, rw,
                 _tf32(backend, device))


def test_triton_conv_size_limits():
    """The Triton conv indexes within one sample with 32 bits and puts every tile on grid axis 0:
    beyond either it says so (checked before any copy of the input) instead of overflowing."""
    from beamkernels.ops import _triton
    if not _triton.ENABLED:
        pytest.skip("triton not installed")
    assert _triton.flat_grid("complex_conv2d", 3, 2, 70000) == (420000,)
    with pytest.raises(ValueError, match=r"65536 x 65536 = 4294967296 tiles exceed CUDA's grid"):
        _triton.flat_grid("complex_conv2d", 65536, 65536)
    # One sample of 2^16 x 2^8 x 2^8 = 2^32 elements, as a broadcast view (no memory behind it).
    x = torch.zeros(1, 1, 1, 1, dtype=torch.complex64).expand(1, 2**16, 2**8, 2**8)
    w = torch.zeros(1, 2**16, 1, 1, dtype=torch.complex64)
    with pytest.raises(ValueError, match=r"one sample of x \(padded\) has 4294967296 elements.*32 bits"):
        torch.ops.beamkernels.triton_complex_conv2d(x, w, None, [1, 1], [0, 0], [1, 1], 1, 0, None)
    # A weight of 2^30 elements (its real view's offsets reach 2^31).
    x = torch.zeros(1, 1, 1, 1, dtype=torch.complex64).expand(1, 2**15, 1, 1)
    w = torch.zeros(1, 1, 1, 1, dtype=torch.complex64).expand(2**15, 2**15, 1, 1)
    with pytest.raises(ValueError, match=r"the weight has 1073741824 elements.*< 2\^30"):
        torch.ops.beamkernels.triton_complex_conv2d(x, w, None, [1, 1], [0, 0], [1, 1], 1, 0, None)


# ---- bad input ----
def test_bad_input(backend, device):
    x = crandn(2, 4, 6, 7, device=device)
    w = crandn(6, 4, 3, 3, device=device)

    def call(*a, **k):
        return run_on(backend, F.complex_conv2d, *a, **k)

    with pytest.raises(TypeError, match=r"argument 'x' must be a complex tensor.*float32"):
        call(torch.randn(2, 4, 6, 7, device=device), w)
    with pytest.raises(TypeError, match=r"argument 'weight' must be a complex tensor"):
        call(x, torch.randn(6, 4, 3, 3, device=device))
    with pytest.raises(ValueError, match=r"x has 4 channels but weight.shape\[1\] \* groups = 3"):
        call(x, crandn(6, 3, 3, 3, device=device))
    with pytest.raises(ValueError, match=r"groups=4 must divide both the input channels \(4\) and the output channels"):
        call(x, crandn(6, 1, 3, 3, device=device), groups=4)
    with pytest.raises(ValueError, match=r"kernel .* is bigger than the padded input"):
        call(x, crandn(6, 4, 9, 3, device=device))
    with pytest.raises(ValueError, match=r"'activation' must be one of"):
        call(x, w, activation="relu")
    with pytest.raises(ValueError, match=r"needs 'activation_bias'"):
        call(x, w, activation="modrelu")
    with pytest.raises(ValueError, match=r"'activation_bias' must have shape \[6\], got \[4\]"):
        call(x, w, activation="modrelu", activation_bias=torch.zeros(4, device=device))
    with pytest.raises(TypeError, match=r"'activation_bias' must be a real tensor of dtype torch.float32"):
        call(x, w, activation="modrelu", activation_bias=torch.zeros(6, dtype=torch.complex64, device=device))
    with pytest.raises(ValueError, match=r"only used with activation='modrelu'"):
        call(x, w, activation="crelu", activation_bias=torch.zeros(6, device=device))
    with pytest.raises(ValueError, match=r"'bias' must have shape \[6\], got \[5\]"):
        call(x, w, crandn(5, device=device))
    with pytest.raises(TypeError, match=r"'weight' has dtype torch.complex128 but 'x' has dtype torch.complex64"):
        call(x, w.to(torch.complex128))
    with pytest.raises(ValueError, match=r"'x' must have 4 dims"):
        call(x[0], w)
    with pytest.raises(ValueError, match=r"'stride' must be >= 1"):
        call(x, w, stride=0)
    with pytest.raises(ValueError, match=r"padding='same' needs stride 1"):
        call(x, w, stride=2, padding="same")
    with pytest.raises(ValueError, match=r"'x' must have 3 dims"):
        run_on(backend, F.complex_conv1d, x, w[..., 0])
    with pytest.raises(ValueError, match=r"weight.shape\[0\] = 6"):
        run_on(backend, F.complex_conv_transpose2d, x, crandn(6, 4, 3, 3, device=device))
    with pytest.raises(ValueError, match=r"output_padding must be smaller than stride or dilation"):
        run_on(backend, F.complex_conv_transpose2d, x, crandn(4, 3, 3, 3, device=device), output_padding=1)
    # zero channels pass every "divides" check (0 % groups == 0); the CPU kernel once segfaulted
    with pytest.raises(ValueError, match=r"need at least one channel, got 0 input channels"):
        call(crandn(1, 0, 3, 4, device=device), crandn(2, 0, 3, 3, device=device), padding=1)
    with pytest.raises(ValueError, match=r"need at least one channel, got 4 input channels .* and 0 output"):
        call(x, crandn(0, 4, 3, 3, device=device), padding=1)
    with pytest.raises(ValueError, match=r"need at least one channel"):
        run_on(backend, F.complex_conv_transpose2d, x, crandn(4, 0, 3, 3, device=device))


def test_compiled_op_errors_directly():
    """The C++ glue validates too (for callers of torch.ops.beamkernels.* directly)."""
    if "cpu" not in beamkernels.available_backends():
        pytest.skip("extension not built")
    op = torch.ops.beamkernels.complex_conv2d
    x, w = crandn(2, 4, 6, 7), crandn(6, 4, 3, 3)
    with pytest.raises(RuntimeError, match="argument 'x' must be a complex tensor"):
        op(torch.randn(2, 4, 6, 7), w, None, [1, 1], [0, 0], [1, 1], 1, 0, None)
    with pytest.raises(RuntimeError, match=r"groups=4 must divide"):
        op(x, crandn(6, 1, 3, 3), None, [1, 1], [0, 0], [1, 1], 4, 0, None)
    with pytest.raises(RuntimeError, match="must be given exactly when the activation is modReLU"):
        op(x, w, None, [1, 1], [0, 0], [1, 1], 1, 3, None)
    with pytest.raises(RuntimeError, match="kernel is bigger than the padded input"):
        op(crandn(2, 4, 2, 2), w, None, [1, 1], [0, 0], [1, 1], 1, 0, None)
    with pytest.raises(RuntimeError, match="need at least one channel, got 0 input channels"):
        op(crandn(1, 0, 3, 4), crandn(2, 0, 3, 3), None, [1, 1], [1, 1], [1, 1], 1, 0, None)


@pytest.mark.parametrize("k", [3, 1])
def test_compiled_op_saves_z_only_with_activation(k):
    """Without an activation the backward needs no pre-activation: `saved` is empty (the conv
    output buffer is not kept alive until the backward); with one it is the full z, and the
    backward rejects an empty one."""
    if "cpu" not in beamkernels.available_backends():
        pytest.skip("extension not built")
    op, bwd = torch.ops.beamkernels.complex_conv2d, torch.ops.beamkernels.complex_conv2d_backward
    x, w = crandn(2, 4, 6, 7), crandn(5, 4, k, k)
    pad = [k // 2, k // 2]
    y, saved = op(x, w, None, [1, 1], pad, [1, 1], 1, 0, None)
    assert saved.shape == (0,) and saved.dtype == torch.float32
    g = crandn(*y.shape)
    gx, gw, _, _ = bwd(g, x, w, None, saved, [1, 1], pad, [1, 1], 1, 0, None, [True, True, False, False])
    ex, ew = torch.autograd.grad(torch.nn.functional.conv2d(x.requires_grad_(), w.requires_grad_(), None, 1, pad),
                                 (x, w), g)
    assert_close(gx, ex, **conv_tol(torch.complex64, 4 * k * k))
    assert_close(gw, ew, **conv_tol(torch.complex64, 2 * 6 * 7))
    y, saved = op(x.detach(), w.detach(), None, [1, 1], pad, [1, 1], 1, 1, None)
    assert saved.shape == (2, 10, 6, 7)
    y_inference, nothing = op(x.detach(), w.detach(), None, [1, 1], pad, [1, 1], 1, 1, None, False)  # save_z=False
    assert nothing.shape == (0,)
    torch.testing.assert_close(y_inference, y, rtol=0, atol=0)
    # Only `saved` used downstream (its gradient is not defined): no gradient reaches x, and the
    # autograd backward returns one None per argument, save_z included.
    xg = x.detach().requires_grad_()
    _, saved = op(xg, w, None, [1, 1], pad, [1, 1], 1, 1, None, True)
    saved.sum().backward()
    assert xg.grad is None
    with pytest.raises(RuntimeError, match="'saved' must be the second output of complex_conv2d"):
        bwd(g, x, w, None, torch.empty(0), [1, 1], pad, [1, 1], 1, 1, None, [True, True, False, False])


def test_fused_modrelu_strided_activation_bias(backend, device):
    """A non-contiguous activation_bias gives the same output and dL/dx, dL/dW (the Triton
    backward's activation kernel read it as contiguous). Not through a helper that clones."""
    x = crandn(2, 3, 6, 7, device=device)
    w = crandn(4, 3, 3, 3, device=device)
    ab = torch.linspace(-0.5, 0.5, 8, device=device)[::2]
    assert not ab.is_contiguous()
    xa, wa = x.clone().requires_grad_(True), w.clone().requires_grad_(True)
    y = run_on(backend, F.complex_conv2d, xa, wa, activation="modrelu", activation_bias=ab)
    g = torch.randn_like(y)
    grads = torch.autograd.grad(y, (xa, wa), g)
    xr, wr = x.clone().requires_grad_(True), w.clone().requires_grad_(True)
    y_ref = ref.complex_conv2d(xr, wr, activation="modrelu", activation_bias=ab.contiguous())
    grads_ref = torch.autograd.grad(y_ref, (xr, wr), g)
    assert_close(y, y_ref, msg=f"forward ({backend})")
    for name, a, e in zip(("dL/dx", "dL/dW"), grads, grads_ref):
        assert_close(a, e, msg=f"{name} ({backend})")


@pytest.mark.parametrize("activation", ["modrelu", "cardioid"])
@pytest.mark.parametrize("ks", [1, 3])
def test_fused_activation_tiny_preactivations(backend, device, activation, ks):
    """Pre-activations of |z| ~ 1e-24 (complex64: |z|^2 underflows) through the fused epilogue: the
    rows that need the polar form's rescaling are redone with it (CPU), so y = z + b u is right
    (0 before) and dL/dx, dL/dW are finite and match float64 arithmetic."""
    x = crandn(2, 3, 6, 7, device=device) * 1e-24
    w = crandn(4, 3, ks, ks, device=device)
    ab = torch.tensor([0.5, -1e-30, 0.0, 0.2], device=device) if activation == "modrelu" else None
    xa, wa = x.clone().requires_grad_(True), w.clone().requires_grad_(True)
    y = run_on(backend, F.complex_conv2d, xa, wa, activation=activation, activation_bias=ab, padding=ks // 2)
    g = torch.randn_like(y)
    gx, gw = torch.autograd.grad(y, (xa, wa), g)
    x64, w64 = x.to(torch.complex128).requires_grad_(True), w.to(torch.complex128).requires_grad_(True)
    y64 = ref.complex_conv2d(x64, w64, activation=activation, activation_bias=None if ab is None else ab.double(),
                             padding=ks // 2)
    gx64, gw64 = torch.autograd.grad(y64, (x64, w64), g.to(torch.complex128))
    for name, a, e in [("y", y, y64), ("dL/dx", gx, gx64), ("dL/dW", gw, gw64)]:
        assert torch.isfinite(torch.view_as_real(a)).all(), f"{name}: inf/NaN ({backend})"
        err = (a.detach().to(torch.complex128) - e).abs().max() / e.abs().max()
        assert err < 1e-4, f"{name} ({backend}): max error {err.item():.3g} of the largest element"
