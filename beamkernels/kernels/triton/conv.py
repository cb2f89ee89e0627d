"""Triton implicit-GEMM kernels for the fused complex conv2d (spec: beamkernels/reference/conv.py).

Tensors are torch.view_as_real views (Triton has no complex dtype): a complex element at index i
is the reals 2i (Re) and 2i + 1 (Im). Each GEMM tile is loaded as real and imaginary parts and
multiplied with 4 real tl.dot's (A B = (Ar Br - Ai Bi) + i (Ar Bi + Ai Br)); sums accumulate in
the input's precision (fp32 / fp64). ``PREC`` is tl.dot's input_precision: "tf32" (PyTorch's
default for convs, beamkernels.conv_tf32_enabled()) or "ieee" (exact fp32; always in the
interpreter and for fp64).

- forward: rows = output pixels (n, ho, wo), columns = output channels of one group, reduction
  over (c, kh, kw); epilogue adds the bias and applies the activation (act_forward_math), writes
  y and, when there is an activation, the pre-activation z for the backward.
- grad_x: rows = input pixels (n, h, w), columns = input channels, reduction over (o, kh, kw) of
  dL/dz at the output pixels that see (h, w): the transposed conv with the conjugated weight.
- grad_w: rows = output channels, columns = (c, kh, kw), reduction over (n, ho, wo): the
  correlation of dL/dz with conj(x).
dL/dz itself comes from the activation's backward kernel (kernels/triton/activation.py), which
also gives modReLU's bias-gradient partial sums.

Every tile (row tile, column tile, group) is one program on grid axis 0 (_tile_ids). What each
kernel costs on sm_90 (registers, spills, shared memory) is checked without a GPU by
benchmarks/triton_resources.py and tests/ops/test_triton_compile.py.
"""

import os

import triton
import triton.language as tl

from beamkernels.kernels.triton.activation import act_forward_math

_INTERPRET = os.environ.get("TRITON_INTERPRET", "0") == "1"


# Autotuner configs (BM, BN, BK, num_warps, num_stages) per tl.dot input precision and GPU
# generation, chosen with benchmarks/triton_resources.py (every kernel compiled for sm_90 and sm_80
# without a GPU; benchmarks/results/triton-sm90-resources.md, -sm80-): on sm_90 each config keeps
# all three kernels within 255 registers and at most ~100 bytes of spill per thread. The earlier
# list (4-warp 128x64 and 128x128 tiles, 2-warp 64x16) spilled 0.5-10 KB per thread in TF32 and up
# to 70 KB with exact fp32, and its fp64 128x128 tile needed 256 KB of shared memory (sm_90 has
# 227 KB). sm_80 (A100: mma.sync instead of Hopper's wgmma) spills with sm_90's TF32 list (up to
# ~450 B) and not with its own (BK 16, 3 stages; the 128x64 forward 64 B); exact fp32 dL/dW spills
# there with every config swept (>= 440 B): one list for both.
# "tf32": tensor cores, complex64 by default; "ieee": exact fp32 (FMA) and fp64, smaller K chunks.
# The thesis layers: N*Ho*Wo is large (rows), channels 16..128 (columns), K = 9*C_in 45..576.
_TILES = {
    "tf32": [(64, 16, 16, 4, 3), (128, 16, 32, 8, 3), (64, 32, 16, 4, 4), (128, 32, 16, 8, 4),
             (64, 64, 32, 8, 3), (128, 64, 32, 8, 3)],
    "ieee": [(32, 16, 16, 2, 2), (64, 16, 16, 4, 3), (32, 32, 16, 4, 3), (64, 32, 16, 8, 3)],
}
_TILES_SM80 = {  # compute capability 8.x
    "tf32": [(64, 16, 16, 4, 3), (32, 32, 16, 4, 3), (64, 32, 16, 4, 3), (128, 32, 16, 8, 3),
             (64, 64, 16, 8, 3), (128, 64, 16, 8, 3)],
    "ieee": _TILES["ieee"],
}


def _current_arch() -> int:
    """Compute capability x10 of the active GPU, 90 where there is none (or it cannot be asked)."""
    try:
        return int(triton.runtime.driver.active.get_current_target().arch)
    except Exception:
        return 90


def gpu_configs(precision: str, arch: int | None = None):
    """The autotuner's configs on a GPU of compute capability ``arch`` (x10; default: the active
    one) for tl.dot's input_precision ("tf32" or "ieee")."""
    arch = _current_arch() if arch is None else arch
    tiles = _TILES_SM80 if 80 <= arch < 90 else _TILES
    return [triton.Config({"BM": bm, "BN": bn, "BK": bk}, num_warps=w, num_stages=st)
            for bm, bn, bk, w, st in tiles[precision]]


def _configs(precision: str):
    if _INTERPRET:  # one small config: the interpreter is slow and does not need tuning
        return [triton.Config({"BM": 16, "BN": 16, "BK": 16}, num_warps=1)]
    return gpu_configs(precision)


def _autotuned(fn, key):
    """One autotuner per precision over the same kernel: {"tf32": ..., "ieee": ...}."""
    return {p: triton.autotune(configs=_configs(p), key=key)(fn) for p in _TILES}


@triton.jit
def _cdot(ar, ai, br, bi, acc_r, acc_i, CONJ_B: tl.constexpr, PREC: tl.constexpr):
    """acc += A B (or A conj(B)) for complex tiles given as real/imaginary parts."""
    if CONJ_B:  # (ar + i ai)(br - i bi) = (ar br + ai bi) + i (ai br - ar bi)
        acc_r = tl.dot(ar, br, acc_r, input_precision=PREC)
        acc_r = tl.dot(ai, bi, acc_r, input_precision=PREC)
        acc_i = tl.dot(ai, br, acc_i, input_precision=PREC)
        acc_i = tl.dot(-ar, bi, acc_i, input_precision=PREC)
    else:  # (ar br - ai bi) + i (ar bi + ai br)
        acc_r = tl.dot(ar, br, acc_r, input_precision=PREC)
        acc_r = tl.dot(-ai, bi, acc_r, input_precision=PREC)
        acc_i = tl.dot(ar, bi, acc_i, input_precision=PREC)
        acc_i = tl.dot(ai, br, acc_i, input_precision=PREC)
    return acc_r, acc_i


@triton.jit
def _split3(offs, A, B):
    """offs = (i * A + j) * B + k -> (i, j, k): a flat pixel index (n, h, w) or tap index (c, kh, kw)."""
    k = offs % B
    t = offs // B
    return t // A, t % A, k


@triton.jit
def _load_c(ptr, offs, mask):
    """(Re, Im) tiles of a view_as_real tensor at complex element offsets ``offs``."""
    return tl.load(ptr + 2 * offs, mask=mask, other=0.0), tl.load(ptr + 2 * offs + 1, mask=mask, other=0.0)


@triton.jit
def _store_c(ptr, offs, re, im, mask):
    tl.store(ptr + 2 * offs, re, mask=mask)
    tl.store(ptr + 2 * offs + 1, im, mask=mask)


@triton.jit
def _tile_ids(T0, T1, T2):
    """This program's (i0, i1, i2) on a grid of T0 x T1 x T2 tiles flattened into axis 0 (CUDA's
    grid y and z stop at 65535: groups of a depthwise conv go beyond it), i0 fastest."""
    pid = tl.program_id(0)
    i0 = pid % T0
    t = pid // T0
    return i0, t % T1, t // T1


# Index arithmetic: 64-bit only where a value can pass 2^31 (pixel and sample offsets, on the [BM]
# or [BK] vectors of one row / column); per-sample offsets and tap offsets are 32-bit (the op checks
# that one padded sample of x and one of y hold fewer than 2^31 elements, the weight fewer than
# 2^30: its doubled offsets have no 64-bit base), so the [BM, BK] tiles cost one 64-bit add per
# element (row base + column offset), not a 64-bit multiply chain.
@triton.jit
def _conv2d_fwd_kernel(x_ptr, w_ptr, b_ptr, ab_ptr, y_ptr, z_ptr,
                       C, H, W, O, HO, WO, KH, KW, SH, SW, PH, PW, DH, DW, CG, OG, M, K, G,
                       HAS_BIAS: tl.constexpr, ACT: tl.constexpr, SAVE_Z: tl.constexpr, PREC: tl.constexpr,
                       BM: tl.constexpr, BN: tl.constexpr, BK: tl.constexpr):
    pid_m, pid_n, grp = _tile_ids(tl.cdiv(M, BM), tl.cdiv(OG, BN), G)
    offs_m = pid_m.to(tl.int64) * BM + tl.arange(0, BM)
    offs_n = pid_n * BN + tl.arange(0, BN)
    m_ok = offs_m < M
    n_ok = offs_n < OG
    nb, ho, wo = _split3(offs_m, HO, WO)
    h0 = (ho * SH - PH).to(tl.int32)
    w0 = (wo * SW - PW).to(tl.int32)
    xrow = (nb * C + grp * CG) * (H * W) + h0 * W + w0  # x[nb, grp*CG, h0, w0] (may lie outside: masked)
    oc = grp * OG + offs_n
    dt = x_ptr.dtype.element_ty
    acc_r = tl.zeros((BM, BN), dtype=dt)
    acc_i = tl.zeros((BM, BN), dtype=dt)
    for k0 in range(0, K, BK):
        offs_k = k0 + tl.arange(0, BK)
        k_ok = offs_k < K
        cg_, kh_, kw_ = _split3(offs_k, KH, KW)
        dh = kh_ * DH
        dw = kw_ * DW
        h = h0[:, None] + dh[None, :]
        w = w0[:, None] + dw[None, :]
        ok = m_ok[:, None] & k_ok[None, :] & (h >= 0) & (h < H) & (w >= 0) & (w < W)
        ar, ai = _load_c(x_ptr, xrow[:, None] + (cg_ * (H * W) + dh * W + dw)[None, :], ok)
        br, bi = _load_c(w_ptr, oc[None, :] * K + offs_k[:, None], k_ok[:, None] & n_ok[None, :])
        acc_r, acc_i = _cdot(ar, ai, br, bi, acc_r, acc_i, False, PREC)
    if HAS_BIAS:
        b_r = tl.load(b_ptr + 2 * oc, mask=n_ok, other=0.0)
        b_i = tl.load(b_ptr + 2 * oc + 1, mask=n_ok, other=0.0)
        acc_r += b_r[None, :]
        acc_i += b_i[None, :]
    yo = (nb * O * (HO * WO) + ho * WO + wo)[:, None] + (oc * (HO * WO))[None, :]
    ok = m_ok[:, None] & n_ok[None, :]
    if SAVE_Z:
        _store_c(z_ptr, yo, acc_r, acc_i, ok)
    if ACT == 3:
        ab = tl.load(ab_ptr + oc, mask=n_ok, other=0.0)[None, :]
    else:
        ab = 0.0
    ya, yb = act_forward_math(acc_r, acc_i, ab, ACT)
    _store_c(y_ptr, yo, ya, yb, ok)


@triton.jit
def _conv2d_bwd_input_kernel(g_ptr, w_ptr, gx_ptr,
                             C, H, W, O, HO, WO, KH, KW, SH, SW, PH, PW, DH, DW, CG, OG, M, K, G,
                             PREC: tl.constexpr, BM: tl.constexpr, BN: tl.constexpr, BK: tl.constexpr):
    # gx[n, c, h, w] = sum_{o, i, j} gz[n, o, ho, wo] conj(w[o, c, i, j]), h = ho SH - PH + i DH.
    pid_m, pid_n, grp = _tile_ids(tl.cdiv(M, BM), tl.cdiv(CG, BN), G)
    offs_m = pid_m.to(tl.int64) * BM + tl.arange(0, BM)
    offs_n = pid_n * BN + tl.arange(0, BN)
    m_ok = offs_m < M
    n_ok = offs_n < CG
    nb, h_, w_ = _split3(offs_m, H, W)
    hp = (h_ + PH).to(tl.int32)
    wp = (w_ + PW).to(tl.int32)
    grow = (nb * O + grp * OG) * (HO * WO)  # gz[nb, grp*OG, 0, 0]
    dt = g_ptr.dtype.element_ty
    acc_r = tl.zeros((BM, BN), dtype=dt)
    acc_i = tl.zeros((BM, BN), dtype=dt)
    for k0 in range(0, K, BK):
        offs_k = k0 + tl.arange(0, BK)
        k_ok = offs_k < K
        og_, kh_, kw_ = _split3(offs_k, KH, KW)
        hh = hp[:, None] - (kh_ * DH)[None, :]
        ww = wp[:, None] - (kw_ * DW)[None, :]
        hs = tl.where(hh >= 0, hh, 0)
        ws = tl.where(ww >= 0, ww, 0)
        ho = hs // SH
        wo = ws // SW
        ok = m_ok[:, None] & k_ok[None, :] & (hh >= 0) & (ww >= 0) & (hs % SH == 0) & (ws % SW == 0)
        ok = ok & (ho < HO) & (wo < WO)
        ar, ai = _load_c(g_ptr, grow[:, None] + (og_ * (HO * WO))[None, :] + (ho * WO + wo), ok)
        # w[oc, c, kh, kw] with oc, kh, kw from k (rows) and c from the column.
        wofs = ((grp * OG + og_)[:, None] * CG + offs_n[None, :]) * (KH * KW) + (kh_ * KW + kw_)[:, None]
        br, bi = _load_c(w_ptr, wofs, k_ok[:, None] & n_ok[None, :])
        acc_r, acc_i = _cdot(ar, ai, br, bi, acc_r, acc_i, True, PREC)
    xo = (nb * C * (H * W) + h_ * W + w_)[:, None] + ((grp * CG + offs_n) * (H * W))[None, :]
    _store_c(gx_ptr, xo, acc_r, acc_i, m_ok[:, None] & n_ok[None, :])


@triton.jit
def _conv2d_bwd_weight_kernel(g_ptr, x_ptr, gw_ptr,
                              C, H, W, O, HO, WO, KH, KW, SH, SW, PH, PW, DH, DW, CG, OG, K, R, G,
                              PREC: tl.constexpr, BM: tl.constexpr, BN: tl.constexpr, BK: tl.constexpr):
    # gw[o, (c, i, j)] = sum_{n, ho, wo} gz[n, o, ho, wo] conj(x[n, c, ho SH - PH + i DH, wo SW - PW + j DW]).
    pid_m, pid_n, grp = _tile_ids(tl.cdiv(OG, BM), tl.cdiv(K, BN), G)
    offs_m = pid_m * BM + tl.arange(0, BM)  # output channel within the group
    offs_n = pid_n * BN + tl.arange(0, BN)  # (c, kh, kw)
    m_ok = offs_m < OG
    n_ok = offs_n < K
    oc = grp * OG + offs_m
    cg_, kh_, kw_ = _split3(offs_n, KH, KW)
    dh = kh_ * DH
    dw = kw_ * DW
    xcol = (grp * CG + cg_) * (H * W) + dh * W + dw
    dt = g_ptr.dtype.element_ty
    acc_r = tl.zeros((BM, BN), dtype=dt)
    acc_i = tl.zeros((BM, BN), dtype=dt)
    for t in range(0, tl.cdiv(R, BK)):  # a tile count, not r0 += BK: R may be just below 2^31
        offs_r = tl.arange(0, BK).to(tl.int64) + t * BK  # t * BK < R: no wrap before the 64-bit add
        r_ok = offs_r < R
        nb, ho, wo = _split3(offs_r, HO, WO)
        ar, ai = _load_c(g_ptr, (oc * (HO * WO))[:, None] + (nb * O * (HO * WO) + ho * WO + wo)[None, :],
                         m_ok[:, None] & r_ok[None, :])
        h0 = (ho * SH - PH).to(tl.int32)
        w0 = (wo * SW - PW).to(tl.int32)
        h = h0[:, None] + dh[None, :]
        w = w0[:, None] + dw[None, :]
        ok = r_ok[:, None] & n_ok[None, :] & (h >= 0) & (h < H) & (w >= 0) & (w < W)
        br, bi = _load_c(x_ptr, (nb * C * (H * W) + h0 * W + w0)[:, None] + xcol[None, :], ok)
        acc_r, acc_i = _cdot(ar, ai, br, bi, acc_r, acc_i, True, PREC)
    _store_c(gw_ptr, oc[:, None] * K + offs_n[None, :], acc_r, acc_i, m_ok[:, None] & n_ok[None, :])


# The launchable kernels, by tl.dot input precision (see _TILES).
conv2d_fwd_kernels = _autotuned(_conv2d_fwd_kernel, ["M", "OG", "K"])
conv2d_bwd_input_kernels = _autotuned(_conv2d_bwd_input_kernel, ["M", "CG", "K"])
conv2d_bwd_weight_kernels = _autotuned(_conv2d_bwd_weight_kernel, ["OG", "K", "R"])
