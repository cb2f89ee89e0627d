"""csrc/cuda/conv.cu and csrc/cuda/conv_glue.cpp, run by the CPU emulator: the CUDA-core kernels
(complex64 exact fp32 and complex128), the TF32 tensor-core kernels (forward, dL/dx as a forward
conv with the flipped conjugate weight, split-K dL/dW), the dL/dz kernel with the row sums, against
the reference (torch's complex conv + the reference activation) on the test_conv grid and on
shapes that cross every tile size; gradcheck in complex128 and opcheck through the package's own
autograd and fake kernels. The emulator checks logic, not speed (tests/cuda_emu/build.py)."""

import math

import pytest
import torch

from beamkernels import conv_tf32
from beamkernels import reference as ref
from beamkernels.ops.conv import ACT_CODES
from tests.cuda_emu.helpers import guarded, tf32_round
from tests.helpers import assert_close
from tests.ops.test_conv import ACTS, CASES, _inputs, _reductions, conv_tol

# Beyond test_conv's grid: shapes that cross the tiles of both kernel families (CUDA cores:
# 64 pixels x 16 channels x 16 reduction; TF32: 128 pixels x 32 channels x 16 complex reduction;
# dL/dW: 32 x 32 x 32) and the negative padding of the TF32 dL/dx conv ((k - 1) d - p < 0).
TILE_CASES = [
    (2, 5, 40, 9, 13, 3, 1, 1, 1, 1),     # 2 / 3 channel tiles, 234 pixels, 45 = 3 chunks of reduction
    (1, 36, 70, 5, 6, 1, 1, 0, 1, 1),     # 1x1, 36 -> 70
    (2, 3, 4, 5, 6, 1, 1, 1, 1, 1),       # 1x1 with padding 1: the TF32 dL/dx conv pads by -1
    (2, 4, 6, 6, 7, 3, 1, 3, 1, 1),       # padding 3 > k - 1
    (2, 64, 40, 4, 18, 3, 1, 1, 1, 1),    # thesis L4-like: 576-long reduction, 144 pixels
    (2, 8, 12, 9, 7, 3, 1, 2, 2, 4),      # groups 4, dilation 2
    (2, 3, 4, 17, 17, 3, 1, 1, 1, 1),     # 289 outputs a row, 578 per weight: the backward's block loops run twice
]
MODES = ["complex64-exact", "complex64-tf32", "complex128"]


def _dtype(mode):
    return torch.complex128 if mode == "complex128" else torch.complex64


def emu_conv2d(E, x, w, b, ab, activation=None, stride=1, padding=0, dilation=1, groups=1):
    def pair(v):
        return [v, v] if isinstance(v, int) else list(v)
    return E.complex_conv2d(x, w, b, pair(stride), pair(padding), pair(dilation), groups, ACT_CODES[activation],
                            ab)[0]


def _check(E, case, mode, activation, launched):
    """Forward and every gradient against the reference. TF32: the reference runs in complex128 on
    the inputs rounded to TF32, as the tensor cores see them, so that the pre-activation agrees to
    fp32 accumulation and an activation's derivative (modReLU's z / |z| near 0, CReLU's kinks) is
    not thrown off by the rounding; what remains is the rounding of dL/dz in the backward GEMMs."""
    dtype = _dtype(mode)
    tf32 = mode == "complex64-tf32"
    x, w, b, ab, kw = _inputs(case, dtype, torch.device("cpu"), activation)
    red_y, red_w = _reductions(case)
    with conv_tf32(tf32):
        leaves = [guarded(t.detach()).requires_grad_() for t in (x, w, b) if t is not None]
        ab_e = ab.detach().clone().requires_grad_() if ab is not None else None
        if tf32:
            leaves_ref = [tf32_round(x).cdouble().requires_grad_(), tf32_round(w).cdouble().requires_grad_(),
                          b.detach().cdouble().requires_grad_()]
            ab_r = ab.detach().double().requires_grad_() if ab is not None else None
        else:
            leaves_ref = [t.detach().clone().requires_grad_() for t in (x, w, b)]
            ab_r = ab.detach().clone().requires_grad_() if ab is not None else None
        y = emu_conv2d(E, *leaves, ab_e, activation, **kw)
        y_ref = ref.complex_conv2d(*leaves_ref, activation=activation, activation_bias=ab_r, **kw)
        assert_close(y, y_ref.to(dtype), msg=f"forward ({mode}, {activation})", **conv_tol(dtype, red_y, tf32))
        g = torch.randn_like(y)
        ins = leaves + ([ab_e] if ab_e is not None else [])
        ins_ref = leaves_ref + ([ab_r] if ab_r is not None else [])
        grads = torch.autograd.grad(y, ins, guarded(g))
        grads_ref = [t.to(gi.dtype) for t, gi in zip(torch.autograd.grad(y_ref, ins_ref, g.to(y_ref.dtype)), grads)]
    for name, gi, gr, red in zip(["x", "weight", "bias", "activation_bias"], grads, grads_ref,
                                 [red_y, red_w, red_w, red_w]):
        assert_close(gi, gr, dtype=gr.dtype, msg=f"dL/d{name} ({mode}, {activation})", **conv_tol(dtype, red, tf32))
    names = launched()
    if tf32:  # the tensor-core kernels ran, not the CUDA-core ones
        assert "conv2d_fwd_tf32_kernel" in names and "conv2d_grad_w_tf32_kernel" in names, names
        assert "conv2d_fwd_kernel" not in names and "conv2d_grad_w_kernel" not in names, names
    else:
        assert "conv2d_fwd_kernel" in names and "conv2d_grad_w_kernel" in names, names
    return names


# modReLU on test_conv's small grid; on the larger tile-crossing shapes cardioid, whose derivative
# is smooth away from 0: with thousands of outputs some z lands within rounding of modReLU's dead
# zone |z| = -b, where any two correct fp32 computations may disagree on the branch.
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("case,activation", [(c, "modrelu") for c in CASES] + [(c, "cardioid") for c in TILE_CASES])
def test_conv2d_matches_reference(E, launched, case, activation, mode):
    _check(E, case, mode, activation, launched)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("activation", ACTS)
def test_conv2d_all_activations(E, launched, activation, mode):
    _check(E, (2, 5, 7, 6, 9, 3, 1, 1, 1, 1), mode, activation, launched)


def test_conv2d_tf32_input_grad_paths(E, launched):
    """TF32 dL/dx: stride 1 runs the forward tensor-core kernel on dL/dz with the flipped conjugate
    weight; stride 2 the direct kernel."""
    names = _check(E, (2, 4, 6, 7, 9, 3, 1, 1, 1, 1), "complex64-tf32", None, launched)
    assert names.count("conv2d_fwd_tf32_kernel") == 2 and "conv2d_grad_x_kernel" not in names, names
    names = _check(E, (2, 4, 6, 7, 9, 3, 2, 1, 1, 1), "complex64-tf32", None, launched)
    assert names.count("conv2d_fwd_tf32_kernel") == 1 and "conv2d_grad_x_kernel" in names, names


@pytest.mark.parametrize("deterministic", [False, True])
def test_conv2d_tf32_split_k_weight_grad(E, emu, launched, deterministic):
    """dL/dW on tensor cores with the reduction over N * Ho * Wo = 765 split over blocks (atomics; the
    last split partial): 2 splits on a 1-SM GPU, 3 on 132 SMs, 2 again where the grid's z limit is 2;
    deterministic: one split."""
    case = (3, 4, 8, 15, 17, 3, 1, 1, 1, 1)
    old = torch.are_deterministic_algorithms_enabled()
    try:
        torch.use_deterministic_algorithms(deterministic, warn_only=True)
        for sms, limit in ((1, 65535), (132, 65535), (132, 2)):
            emu.configure(sms=sms, max_grid_yz=limit)
            _check(E, case, "complex64-tf32", "cardioid", launched)
    finally:
        torch.use_deterministic_algorithms(old)
        emu.configure()


def test_conv2d_tf32_off_below_sm80(E, emu, launched):
    """TF32 is on in torch, but the GPU has no TF32 tensor cores (sm_75): the exact kernels run."""
    emu.configure(cc_major=7)
    try:
        x, w, b, ab, kw = _inputs((2, 3, 5, 6, 7, 3, 1, 1, 1, 1), torch.complex64, torch.device("cpu"), None,
                                  requires_grad=False)
        with conv_tf32(True):
            y = emu_conv2d(E, x, w, b, None, None, **kw)
    finally:
        emu.configure()
    assert_close(y, ref.complex_conv2d(x, w, b, **kw), **conv_tol(torch.complex64, 27))
    assert launched() == ["conv2d_fwd_kernel"]


@pytest.mark.parametrize("mode", MODES)
def test_conv2d_masks_and_no_bias(E, launched, mode):
    """Without a bias, and with only dL/dx asked for: no weight-gradient kernel runs, dL/dx is right."""
    dtype = _dtype(mode)
    x, w, _, _, kw = _inputs((2, 3, 5, 6, 7, 3, 1, 1, 1, 1), dtype, torch.device("cpu"), None)
    with conv_tf32(mode == "complex64-tf32"):
        y = emu_conv2d(E, x, w.detach(), None, None, "crelu", **kw)
        g = torch.randn_like(y)
        launched()
        (gx,) = torch.autograd.grad(y, [x], g)
        names = launched()
    xr = x.detach().clone().requires_grad_()
    (gr,) = torch.autograd.grad(ref.complex_conv2d(xr, w.detach(), None, activation="crelu", **kw), [xr], g)
    assert_close(gx, gr, **conv_tol(dtype, 27, mode == "complex64-tf32"))
    assert "conv2d_grad_w_kernel" not in names and "conv2d_grad_w_tf32_kernel" not in names, names


def test_conv2d_schedules_agree(E, emu):
    """Every block-level and warp-level barrier is where it must be: the threads' order between
    barriers (in order, reversed, shuffled, warp-greedy) does not change the result (exact fp32: to the bit; TF32:
    also, here, since one split per weight tile leaves no atomics order to vary)."""
    x, w, b, ab, kw = _inputs((2, 5, 40, 9, 13, 3, 1, 1, 1, 1), torch.complex64, torch.device("cpu"), "modrelu",
                              requires_grad=False)
    g = torch.randn(2, 40, 9, 13, dtype=torch.complex64)
    for tf32 in (False, True):
        runs = []
        try:
            for schedule in (0, 1, 2, 3):
                emu.configure(schedule=schedule, seed=1234)
                with conv_tf32(tf32):
                    y, z = E.complex_conv2d(x, w, b, [1, 1], [1, 1], [1, 1], 1, 3, ab)
                    grads = E.complex_conv2d_backward(g, x, w, b, z, [1, 1], [1, 1], [1, 1], 1, 3, ab,
                                                      [True, True, True, True])
                runs.append((y,) + tuple(grads))
        finally:
            emu.configure()
        y_ref = ref.complex_conv2d(x, w, b, padding=1, activation="modrelu", activation_bias=ab)
        assert_close(runs[0][0], y_ref, **conv_tol(torch.complex64, 45, tf32))
        for run in runs[1:]:
            for a, c in zip(run, runs[0]):
                assert torch.equal(a, c)


@pytest.mark.parametrize("mode", MODES)
def test_conv2d_saved_z_is_planar_conv_without_bias(E, mode):
    """The saved buffer is the planar pre-activation [N, 2 C_out, Ho, Wo] without bias (the layout
    that the CPU glue and the fake kernel share); none without an activation or with save_z=False."""
    dtype = _dtype(mode)
    x, w, b, ab, kw = _inputs((2, 3, 5, 6, 7, 3, 1, 1, 1, 1), dtype, torch.device("cpu"), "modrelu",
                              requires_grad=False)
    with conv_tf32(mode == "complex64-tf32"):
        _, z = E.complex_conv2d(x, w, b, [1, 1], [1, 1], [1, 1], 1, 3, ab)
        _, none = E.complex_conv2d(x, w, b, [1, 1], [1, 1], [1, 1], 1, 0, None)
        _, inference = E.complex_conv2d(x, w, b, [1, 1], [1, 1], [1, 1], 1, 3, ab, False)
    zc = torch.nn.functional.conv2d(x, w, None, padding=1)
    planar = torch.stack([zc.real, zc.imag], 2).reshape(2, 10, 6, 7)
    assert_close(z, planar, **conv_tol(dtype, 27, mode == "complex64-tf32"))
    assert none.shape == (0,) and inference.shape == (0,)


@pytest.mark.parametrize("mode", MODES)
def test_conv2d_gradcheck_complex128_and_masks(E, launched, mode):
    """gradcheck (complex128) through the emulated op with the package's autograd; and the output
    mask: no dL/dx kernel for an input that needs no gradient (the first layer)."""
    if mode == "complex128":
        for activation in (None, "modrelu", "cardioid"):
            x, w, b, ab, kw = _inputs((1, 2, 3, 4, 5, 3, 2, 1, 1, 1), torch.complex128, torch.device("cpu"),
                                      activation)
            ins = [x, w, b] + ([ab] if ab is not None else [])

            def fn(*t, activation=activation, kw=kw):
                return emu_conv2d(E, t[0], t[1], t[2], t[3] if len(t) > 3 else None, activation, **kw)

            assert torch.autograd.gradcheck(fn, tuple(ins))
    dtype = _dtype(mode)
    with conv_tf32(mode == "complex64-tf32"):
        x, w, b, ab, kw = _inputs((2, 3, 5, 6, 7, 3, 1, 1, 1, 1), dtype, torch.device("cpu"), None)
        launched()
        y = emu_conv2d(E, x.detach(), w, b, None, None, **kw)
        (gw,) = torch.autograd.grad(y.abs().sum(), [w])
        names = launched()
        assert "conv2d_grad_x_kernel" not in names and names.count("conv2d_fwd_tf32_kernel") <= 1, names


@pytest.mark.parametrize("requires_grad", [False, True])
def test_opcheck(E, requires_grad):
    """The CUDA glue's outputs agree with the fake kernels (shapes, dtypes, the saved buffer), and the
    autograd registration with the op's schema."""
    for case, activation in [((2, 3, 5, 6, 7, 3, 1, 1, 1, 1), "modrelu"), ((2, 4, 6, 7, 9, (3, 2), 2, (1, 0), (2, 1), 2), None)]:
        x, w, b, ab, kw = _inputs(case, torch.complex64, torch.device("cpu"), activation, requires_grad=requires_grad)
        pair = lambda v: [v, v] if isinstance(v, int) else list(v)  # noqa: E731
        args = (x, w, b, pair(kw["stride"]), pair(kw["padding"]), pair(kw["dilation"]), kw["groups"],
                ACT_CODES[activation], ab)
        torch.library.opcheck(E.complex_conv2d, args,
                              test_utils=("test_schema", "test_autograd_registration", "test_faketensor",
                                          "test_aot_dispatch_dynamic"))


def test_conv2d_empty_batch_and_strided_input(E):
    for mode in MODES:
        dtype = _dtype(mode)
        with conv_tf32(mode == "complex64-tf32"):
            x = torch.randn(0, 3, 6, 7, dtype=dtype, requires_grad=True)
            w = torch.randn(5, 3, 3, 3, dtype=dtype, requires_grad=True)
            y = emu_conv2d(E, x, w, None, None, "crelu", padding=1)
            assert y.shape == (0, 5, 6, 7)
            gx, gw = torch.autograd.grad(y.abs().sum(), [x, w])
            assert gx.shape == x.shape and torch.equal(gw, torch.zeros_like(gw))
            xs = torch.randn(2, 3, 6, 14, dtype=dtype)[..., ::2]
            assert not xs.is_contiguous()
            y = emu_conv2d(E, xs, w.detach(), None, None, None, padding=1)
            assert_close(y, torch.nn.functional.conv2d(xs, w.detach(), padding=1),
                         **conv_tol(dtype, 27, mode == "complex64-tf32"))


def test_bad_input_errors(E):
    """The glue's checks (shared with the CPU glue) run before any launch."""
    x = torch.randn(2, 3, 6, 7, dtype=torch.complex64)
    w = torch.randn(5, 3, 3, 3, dtype=torch.complex64)
    with pytest.raises(RuntimeError, match="argument 'x' must be a complex tensor"):
        E.complex_conv2d(x.real, w, None, [1, 1], [0, 0], [1, 1], 1, 0, None)
    with pytest.raises(RuntimeError, match="x has 3 channels"):
        E.complex_conv2d(x, w[:, :2], None, [1, 1], [0, 0], [1, 1], 1, 0, None)
    with pytest.raises(RuntimeError, match="kernel is bigger than the padded input"):
        E.complex_conv2d(x[..., :2], w, None, [1, 1], [0, 0], [1, 1], 1, 0, None)


def test_32bit_index_limits_are_checked(E, launched):
    """The forward kernels split the reduction index and index image rows / columns with 32-bit
    arithmetic (memory offsets stay 64-bit): beyond 2^30 the glue says so, before any copy or
    launch. Broadcast views: no memory behind the 2^30 elements."""
    z = torch.zeros(1, 1, 1, 1, dtype=torch.complex64)
    x, w = z.expand(1, 2**30, 1, 1), z.expand(1, 2**30, 1, 1)
    with pytest.raises(RuntimeError, match=r"'weight' \[1, 1073741824, 1, 1\] with groups=1 gives a reduction of 1073741824"):
        E.complex_conv2d(x, w, None, [1, 1], [0, 0], [1, 1], 1, 0, None)
    with pytest.raises(RuntimeError, match=r"padded image size 1 x 107374182\d; the CUDA kernels take fewer than 2\^30"):
        E.complex_conv2d(z.expand(1, 1, 1, 2**30), z, None, [1, 1], [0, 1], [1, 1], 1, 0, None)
    assert launched() == []


def test_tolerance_is_tight_enough_to_fail(E):
    """The comparison can fail: a weight off by one part in 1e4 on one element is caught in exact fp32."""
    x, w, b, ab, kw = _inputs((2, 3, 5, 6, 7, 3, 1, 1, 1, 1), torch.complex64, torch.device("cpu"), None,
                              requires_grad=False)
    with conv_tf32(False):
        y = emu_conv2d(E, x, w, b, None, None, **kw)
    w2 = w.clone()
    w2[0, 0, 0, 0] *= 1 + 1e-3
    with pytest.raises(AssertionError):
        assert_close(y, ref.complex_conv2d(x, w2, b, **kw), **conv_tol(torch.complex64, 27))
    assert math.isfinite(y.abs().max().item())


@pytest.mark.parametrize("mode", MODES)
def test_conv2d_groups_beyond_the_grid_limit(E, emu, launched, mode):
    """Groups run on grid z (forward) and grid y (TF32 dL/dW), whose limit is 65535 blocks: more
    groups take several launches. Shown with the emulated device's limit lowered to 4 (a
    depthwise conv of 10 groups: 3 launches each), which is what 70000 groups meet on a GPU."""
    emu.configure(max_grid_yz=4)
    try:
        names = _check(E, (2, 10, 20, 5, 6, 3, 1, 1, 1, 10), mode, "modrelu", launched)
    finally:
        emu.configure()
    fwd = "conv2d_fwd_tf32_kernel" if mode == "complex64-tf32" else "conv2d_fwd_kernel"
    assert names.count(fwd) == (6 if mode == "complex64-tf32" else 3), names  # TF32: dL/dx is a forward too
    if mode == "complex64-tf32":
        assert names.count("conv2d_grad_w_tf32_kernel") == 3, names
        # Two groups of two 32-channel tiles each, grid y limit 3: one group (2 tiles) per launch.
        emu.configure(max_grid_yz=3)
        try:
            names = _check(E, (2, 4, 80, 5, 6, 3, 1, 1, 1, 2), mode, "modrelu", launched)
            assert names.count("conv2d_grad_w_tf32_kernel") == 2, names
            emu.configure(max_grid_yz=1)  # not even one group's tiles fit: a clear error, no launch
            with pytest.raises(RuntimeError, match="invalid configuration"):
                _check(E, (2, 4, 80, 5, 6, 3, 1, 1, 1, 2), mode, "modrelu", launched)
        finally:
            emu.configure()
