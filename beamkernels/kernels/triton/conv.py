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
"""

import os

import triton
import triton.language as tl

from beamkernels.kernels.triton.activation import act_forward_math

_INTERPRET = os.environ.get("TRITON_INTERPRET", "0") == "1"


def _configs():
    if _INTERPRET:  # one small config: the interpreter is slow and does not need tuning
        return [triton.Config({"BM": 16, "BN": 16, "BK": 16}, num_warps=1)]
    # The thesis layers: N*Ho*Wo is large (rows), channels 16..128 (columns), K = 9*C_in 45..576.
    return [
        triton.Config({"BM": 64, "BN": 16, "BK": 16}, num_warps=2, num_stages=3),
        triton.Config({"BM": 64, "BN": 32, "BK": 32}, num_warps=4, num_stages=3),
        triton.Config({"BM": 128, "BN": 32, "BK": 32}, num_warps=4, num_stages=3),
        triton.Config({"BM": 128, "BN": 64, "BK": 32}, num_warps=4, num_stages=3),
        triton.Config({"BM": 64, "BN": 64, "BK": 32}, num_warps=4, num_stages=4),
        triton.Config({"BM": 128, "BN": 128, "BK": 32}, num_warps=8, num_stages=3),
    ]


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
    """(Re, Im) tiles of a view_as_real tensor at complex element offsets offs (given as 2 * index)."""
    return tl.load(ptr + offs, mask=mask, other=0.0), tl.load(ptr + offs + 1, mask=mask, other=0.0)


@triton.jit
def _store_c(ptr, offs, re, im, mask):
    tl.store(ptr + offs, re, mask=mask)
    tl.store(ptr + offs + 1, im, mask=mask)


@triton.autotune(configs=_configs(), key=["M", "OG", "K"])
@triton.jit
def conv2d_fwd_kernel(x_ptr, w_ptr, b_ptr, ab_ptr, y_ptr, z_ptr,
                      C, H, W, O, HO, WO, KH, KW, SH, SW, PH, PW, DH, DW, CG, OG, M, K,
                      HAS_BIAS: tl.constexpr, ACT: tl.constexpr, SAVE_Z: tl.constexpr, PREC: tl.constexpr,
                      BM: tl.constexpr, BN: tl.constexpr, BK: tl.constexpr):
    pid_m = tl.program_id(0)
    pid_n = tl.program_id(1)
    grp = tl.program_id(2)
    offs_m = pid_m.to(tl.int64) * BM + tl.arange(0, BM)
    offs_n = pid_n * BN + tl.arange(0, BN)
    m_ok = offs_m < M
    n_ok = offs_n < OG
    nb, ho, wo = _split3(offs_m, HO, WO)
    oc = (grp * OG + offs_n).to(tl.int64)
    dt = x_ptr.dtype.element_ty
    acc_r = tl.zeros((BM, BN), dtype=dt)
    acc_i = tl.zeros((BM, BN), dtype=dt)
    for k0 in range(0, K, BK):
        offs_k = k0 + tl.arange(0, BK)
        k_ok = offs_k < K
        cg_, kh_, kw_ = _split3(offs_k, KH, KW)
        cin = grp * CG + cg_
        h = ho[:, None] * SH - PH + kh_[None, :] * DH
        w = wo[:, None] * SW - PW + kw_[None, :] * DW
        ok = m_ok[:, None] & k_ok[None, :] & (h >= 0) & (h < H) & (w >= 0) & (w < W)
        ar, ai = _load_c(x_ptr, 2 * (((nb[:, None] * C + cin[None, :]) * H + h) * W + w), ok)
        br, bi = _load_c(w_ptr, 2 * (oc[None, :] * K + offs_k[:, None]), k_ok[:, None] & n_ok[None, :])
        acc_r, acc_i = _cdot(ar, ai, br, bi, acc_r, acc_i, False, PREC)
    if HAS_BIAS:
        b_r, b_i = _load_c(b_ptr, 2 * oc, n_ok)
        acc_r += b_r[None, :]
        acc_i += b_i[None, :]
    yo = 2 * (((nb[:, None] * O + oc[None, :]) * HO + ho[:, None]) * WO + wo[:, None])
    ok = m_ok[:, None] & n_ok[None, :]
    if SAVE_Z:
        _store_c(z_ptr, yo, acc_r, acc_i, ok)
    if ACT == 3:
        ab = tl.load(ab_ptr + oc, mask=n_ok, other=0.0)[None, :]
    else:
        ab = 0.0
    ya, yb = act_forward_math(acc_r, acc_i, ab, ACT)
    _store_c(y_ptr, yo, ya, yb, ok)


@triton.autotune(configs=_configs(), key=["M", "CG", "K"])
@triton.jit
def conv2d_bwd_input_kernel(g_ptr, w_ptr, gx_ptr,
                            C, H, W, O, HO, WO, KH, KW, SH, SW, PH, PW, DH, DW, CG, OG, M, K,
                            PREC: tl.constexpr, BM: tl.constexpr, BN: tl.constexpr, BK: tl.constexpr):
    # gx[n, c, h, w] = sum_{o, i, j} gz[n, o, ho, wo] conj(w[o, c, i, j]), h = ho SH - PH + i DH.
    pid_m = tl.program_id(0)
    pid_n = tl.program_id(1)
    grp = tl.program_id(2)
    offs_m = pid_m.to(tl.int64) * BM + tl.arange(0, BM)
    offs_n = pid_n * BN + tl.arange(0, BN)
    m_ok = offs_m < M
    n_ok = offs_n < CG
    nb, h_, w_ = _split3(offs_m, H, W)
    cin = (grp * CG + offs_n).to(tl.int64)
    dt = g_ptr.dtype.element_ty
    acc_r = tl.zeros((BM, BN), dtype=dt)
    acc_i = tl.zeros((BM, BN), dtype=dt)
    for k0 in range(0, K, BK):
        offs_k = k0 + tl.arange(0, BK)
        k_ok = offs_k < K
        og_, kh_, kw_ = _split3(offs_k, KH, KW)
        oc = grp * OG + og_
        hh = h_[:, None] + PH - kh_[None, :] * DH
        ww = w_[:, None] + PW - kw_[None, :] * DW
        hs = tl.where(hh >= 0, hh, 0)
        ws = tl.where(ww >= 0, ww, 0)
        ho = hs // SH
        wo = ws // SW
        ok = m_ok[:, None] & k_ok[None, :] & (hh >= 0) & (ww >= 0) & (hs % SH == 0) & (ws % SW == 0)
        ok = ok & (ho < HO) & (wo < WO)
        ar, ai = _load_c(g_ptr, 2 * (((nb[:, None] * O + oc[None, :]) * HO + ho) * WO + wo), ok)
        # w[oc, c, kh, kw] with oc, kh, kw from k (rows) and c from the column.
        wofs = 2 * (((oc[:, None].to(tl.int64) * CG + offs_n[None, :]) * KH + kh_[:, None]) * KW + kw_[:, None])
        br, bi = _load_c(w_ptr, wofs, k_ok[:, None] & n_ok[None, :])
        acc_r, acc_i = _cdot(ar, ai, br, bi, acc_r, acc_i, True, PREC)
    xo = 2 * (((nb[:, None] * C + cin[None, :]) * H + h_[:, None]) * W + w_[:, None])
    _store_c(gx_ptr, xo, acc_r, acc_i, m_ok[:, None] & n_ok[None, :])


@triton.autotune(configs=_configs(), key=["OG", "K", "R"])
@triton.jit
def conv2d_bwd_weight_kernel(g_ptr, x_ptr, gw_ptr,
                             C, H, W, O, HO, WO, KH, KW, SH, SW, PH, PW, DH, DW, CG, OG, K, R,
                             PREC: tl.constexpr, BM: tl.constexpr, BN: tl.constexpr, BK: tl.constexpr):
    # gw[o, (c, i, j)] = sum_{n, ho, wo} gz[n, o, ho, wo] conj(x[n, c, ho SH - PH + i DH, wo SW - PW + j DW]).
    pid_m = tl.program_id(0)
    pid_n = tl.program_id(1)
    grp = tl.program_id(2)
    offs_m = pid_m * BM + tl.arange(0, BM)  # output channel within the group
    offs_n = pid_n * BN + tl.arange(0, BN)  # (c, kh, kw)
    m_ok = offs_m < OG
    n_ok = offs_n < K
    oc = (grp * OG + offs_m).to(tl.int64)
    cg_, kh_, kw_ = _split3(offs_n, KH, KW)
    cin = (grp * CG + cg_).to(tl.int64)
    dt = g_ptr.dtype.element_ty
    acc_r = tl.zeros((BM, BN), dtype=dt)
    acc_i = tl.zeros((BM, BN), dtype=dt)
    for r0 in range(0, R, BK):
        offs_r = r0 + tl.arange(0, BK).to(tl.int64)
        r_ok = offs_r < R
        nb, ho, wo = _split3(offs_r, HO, WO)
        go = 2 * (((nb[None, :] * O + oc[:, None]) * HO + ho[None, :]) * WO + wo[None, :])
        ar, ai = _load_c(g_ptr, go, m_ok[:, None] & r_ok[None, :])
        h = ho[:, None] * SH - PH + kh_[None, :] * DH
        w = wo[:, None] * SW - PW + kw_[None, :] * DW
        ok = r_ok[:, None] & n_ok[None, :] & (h >= 0) & (h < H) & (w >= 0) & (w < W)
        br, bi = _load_c(x_ptr, 2 * (((nb[:, None] * C + cin[None, :]) * H + h) * W + w), ok)
        acc_r, acc_i = _cdot(ar, ai, br, bi, acc_r, acc_i, True, PREC)
    _store_c(gw_ptr, 2 * (oc[:, None] * K + offs_n[None, :]), acc_r, acc_i, m_ok[:, None] & n_ok[None, :])
