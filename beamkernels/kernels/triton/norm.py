"""Triton kernels for the whitening batch-norm (formulas: csrc/norm.h, spec:
beamkernels/reference/norm.py).

Layout: x viewed as real [rows = N*C, inner, 2] (torch.view_as_real of a contiguous complex
tensor). One program handles one BLOCK-sized chunk of one (n, c) row:
- ``bn_stats_kernel``: 5 partial sums of the values shifted by x[0, c, 0] (sum a, sum b,
  sum a^2, sum a b, sum b^2, in the input precision over one BLOCK), one row of ``part`` per
  program; the caller merges them in float64 (deterministic) and forms mean and covariance.
- ``bn_apply_kernel``: y = A (x - m) + beta with per-channel coefficients coef [C, 10] =
  (A00, A01, A10, A11, beta_r, beta_i, m_hi (2), m_lo (2)), m = m_hi + m_lo so that x - m_hi is
  exact near the mean (a large mean loses no precision).
- ``bn_bwd_reduce_kernel``: 6 partial sums (sum g_r, sum g_i, M = sum g (x - m)^T).
- ``bn_bwd_apply_kernel``: gx = K g + P (x - m) + q with coef [C, 11] =
  (K00, K01, K10, K11, P00, P01, P11, q_r, q_i, m_r, m_i).
"""

import triton
import triton.language as tl


@triton.jit
def _row_setup(C, inner, chunks, BLOCK: tl.constexpr):
    pid = tl.program_id(0)
    row = pid // chunks
    chunk = pid % chunks
    # 64-bit: c * 11 (coefficients) would wrap in int32 past 195M channels (layer norm runs as a
    # batch norm over rows, so C can be that large).
    c = (row % C).to(tl.int64)
    offs = chunk * BLOCK + tl.arange(0, BLOCK)
    mask = offs < inner
    base = row.to(tl.int64) * inner * 2 + 2 * offs.to(tl.int64)
    return pid, c, mask, base


@triton.jit
def bn_stats_kernel(x_ptr, part_ptr, C, inner, chunks, BLOCK: tl.constexpr):
    pid, c, mask, base = _row_setup(C, inner, chunks, BLOCK)
    first = c.to(tl.int64) * inner * 2  # x[0, c, 0]
    kr = tl.load(x_ptr + first)
    ki = tl.load(x_ptr + first + 1)
    a = tl.where(mask, tl.load(x_ptr + base, mask=mask, other=0.0) - kr, 0.0)
    b = tl.where(mask, tl.load(x_ptr + base + 1, mask=mask, other=0.0) - ki, 0.0)
    out = part_ptr + pid.to(tl.int64) * 5
    tl.store(out + 0, tl.sum(a, axis=0))
    tl.store(out + 1, tl.sum(b, axis=0))
    tl.store(out + 2, tl.sum(a * a, axis=0))
    tl.store(out + 3, tl.sum(a * b, axis=0))
    tl.store(out + 4, tl.sum(b * b, axis=0))


@triton.jit
def bn_apply_kernel(x_ptr, coef_ptr, y_ptr, C, inner, chunks, BLOCK: tl.constexpr):
    pid, c, mask, base = _row_setup(C, inner, chunks, BLOCK)
    cp = coef_ptr + c * 10
    a0 = tl.load(cp + 0)
    a1 = tl.load(cp + 1)
    a2 = tl.load(cp + 2)
    a3 = tl.load(cp + 3)
    br = tl.load(cp + 4)
    bi = tl.load(cp + 5)
    xr = (tl.load(x_ptr + base, mask=mask, other=0.0) - tl.load(cp + 6)) - tl.load(cp + 8)
    xi = (tl.load(x_ptr + base + 1, mask=mask, other=0.0) - tl.load(cp + 7)) - tl.load(cp + 9)
    tl.store(y_ptr + base, a0 * xr + a1 * xi + br, mask=mask)
    tl.store(y_ptr + base + 1, a2 * xr + a3 * xi + bi, mask=mask)


@triton.jit
def bn_bwd_reduce_kernel(g_ptr, x_ptr, mean_ptr, part_ptr, C, inner, chunks, BLOCK: tl.constexpr):
    pid, c, mask, base = _row_setup(C, inner, chunks, BLOCK)
    mr = tl.load(mean_ptr + c * 2)
    mi = tl.load(mean_ptr + c * 2 + 1)
    gr = tl.load(g_ptr + base, mask=mask, other=0.0)
    gi = tl.load(g_ptr + base + 1, mask=mask, other=0.0)
    dr = tl.where(mask, tl.load(x_ptr + base, mask=mask, other=0.0) - mr, 0.0)
    di = tl.where(mask, tl.load(x_ptr + base + 1, mask=mask, other=0.0) - mi, 0.0)
    out = part_ptr + pid.to(tl.int64) * 6
    tl.store(out + 0, tl.sum(gr, axis=0))
    tl.store(out + 1, tl.sum(gi, axis=0))
    tl.store(out + 2, tl.sum(gr * dr, axis=0))
    tl.store(out + 3, tl.sum(gr * di, axis=0))
    tl.store(out + 4, tl.sum(gi * dr, axis=0))
    tl.store(out + 5, tl.sum(gi * di, axis=0))


@triton.jit
def bn_bwd_apply_kernel(g_ptr, x_ptr, coef_ptr, gx_ptr, C, inner, chunks, BLOCK: tl.constexpr):
    pid, c, mask, base = _row_setup(C, inner, chunks, BLOCK)
    cp = coef_ptr + c * 11
    k0 = tl.load(cp + 0)
    k1 = tl.load(cp + 1)
    k2 = tl.load(cp + 2)
    k3 = tl.load(cp + 3)
    p00 = tl.load(cp + 4)
    p01 = tl.load(cp + 5)
    p11 = tl.load(cp + 6)
    q0 = tl.load(cp + 7)
    q1 = tl.load(cp + 8)
    mr = tl.load(cp + 9)
    mi = tl.load(cp + 10)
    gr = tl.load(g_ptr + base, mask=mask, other=0.0)
    gi = tl.load(g_ptr + base + 1, mask=mask, other=0.0)
    dr = tl.load(x_ptr + base, mask=mask, other=0.0) - mr
    di = tl.load(x_ptr + base + 1, mask=mask, other=0.0) - mi
    tl.store(gx_ptr + base, k0 * gr + k1 * gi + p00 * dr + p01 * di + q0, mask=mask)
    tl.store(gx_ptr + base + 1, k2 * gr + k3 * gi + p01 * dr + p11 * di + q1, mask=mask)
