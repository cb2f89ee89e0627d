"""Triton kernels for the complex activations (formulas: csrc/activation.h, spec:
beamkernels/reference/activation.py).

Layout: x viewed as [rows = N*C, inner] complex elements, interleaved (re, im). One program
handles one BLOCK-sized chunk of one row, so modReLU's bias is a scalar per program and the
bias gradient is one partial sum per program (reduced by the caller, deterministic).
Tiles are loaded as [BLOCK, 2] (coalesced) and split into real and imaginary parts.
"""

import triton
import triton.language as tl

# Activation codes, as the C++ enum in csrc/activation.h.
NONE, CRELU, ZRELU, MODRELU, CARDIOID = 0, 1, 2, 3, 4
CODES = {"crelu": CRELU, "zrelu": ZRELU, "modrelu": MODRELU, "cardioid": CARDIOID}


# Polar form z = r u without underflow or overflow (csrc/activation.h to_polar): scale z by an
# exact power of two `up` when max(|a|, |b|) leaves [2^-50, 2^50] (float32; [2^-450, 2^450]
# for float64, whose constants are float64 literals), rs = r up, inv = 1 / rs; u = 0 at z = 0.
_F32_SMALL = tl.constexpr(2.0 ** -50)
_F32_LARGE = tl.constexpr(2.0 ** 50)
_F32_UP = tl.constexpr(2.0 ** 100)
_F32_DOWN = tl.constexpr(2.0 ** -100)
_F64_SMALL = tl.constexpr(2.0 ** -450)
_F64_LARGE = tl.constexpr(2.0 ** 450)
_F64_UP = tl.constexpr(2.0 ** 600)
_F64_DOWN = tl.constexpr(2.0 ** -600)


@triton.jit
def _polar(a, b):
    """(u_a, u_b, inv, up, nonzero) of z = a + ib: u = z / |z|, inv = 1 / (|z| up)."""
    m = tl.maximum(tl.abs(a), tl.abs(b))
    if a.dtype == tl.float64:
        up = tl.where(m < _F64_SMALL, _F64_UP, tl.where(m > _F64_LARGE, _F64_DOWN, 1.0))
    else:
        up = tl.where(m < _F32_SMALL, _F32_UP, tl.where(m > _F32_LARGE, _F32_DOWN, 1.0))
    a_s = a * up
    b_s = b * up
    rs2 = a_s * a_s + b_s * b_s
    nonzero = rs2 > 0.0
    inv = 1.0 / tl.sqrt(tl.where(nonzero, rs2, 1.0))
    return a_s * inv, b_s * inv, inv, up, nonzero


_F32_MIN = tl.constexpr(2.0 ** -126)  # smallest normal float32
_F64_MIN = tl.constexpr(2.0 ** -1022)


@triton.jit
def _inv_abs(a, b):
    """(t = 1 / |z|, nonzero) for the forward epilogues, with fewer live values than _polar (the
    fused conv's [BM, BN] tile spilled on sm_90 with it): z + c u = z + c (z t), each z t <= 1.
    Subnormal z counts as 0 here (t would overflow), as on GPUs that flush subnormals."""
    m = tl.maximum(tl.abs(a), tl.abs(b))
    if a.dtype == tl.float64:
        up = tl.where(m < _F64_SMALL, _F64_UP, tl.where(m > _F64_LARGE, _F64_DOWN, 1.0))
        nonzero = m >= _F64_MIN
    else:
        up = tl.where(m < _F32_SMALL, _F32_UP, tl.where(m > _F32_LARGE, _F32_DOWN, 1.0))
        nonzero = m >= _F32_MIN
    a_s = a * up
    b_s = b * up
    rs2 = tl.where(nonzero, a_s * a_s + b_s * b_s, 1.0)
    return up / tl.sqrt(rs2), nonzero


@triton.jit
def act_forward_math(a, b, bias, ACT: tl.constexpr):
    """Forward of one tile; shared with the fused conv epilogue."""
    if ACT == 1:  # CReLU
        ya = tl.maximum(a, 0.0)
        yb = tl.maximum(b, 0.0)
    elif ACT == 2:  # zReLU: closed first quadrant passes
        keep = (a >= 0.0) & (b >= 0.0)
        ya = tl.where(keep, a, 0.0)
        yb = tl.where(keep, b, 0.0)
    elif ACT == 3:  # modReLU: (r + bias) u = z + bias u where r > 0 and r + bias > 0
        t, nonzero = _inv_abs(a, b)
        active = nonzero & (1.0 + bias * t > 0.0)
        ya = tl.where(active, a + bias * (a * t), 0.0)
        yb = tl.where(active, b + bias * (b * t), 0.0)
    elif ACT == 4:  # Cardioid: 0.5 (1 + cos arg z) z = 0.5 (z + Re z u)
        t, nonzero = _inv_abs(a, b)
        ya = tl.where(nonzero, 0.5 * (a + a * (a * t)), 0.0)
        yb = tl.where(nonzero, 0.5 * (b + a * (b * t)), 0.0)
    else:
        ya = a
        yb = b
    return ya, yb


@triton.jit
def act_backward_math(gr, gi, a, b, bias, ACT: tl.constexpr):
    """dL/dz (PyTorch convention) and, for modReLU, the per-element dL/dbias.
    modReLU, cardioid: with p = Re(conj(u) G), q = Im(conj(u) G), dL/dz = u (P + i Q)
    (csrc/activation.h act_backward)."""
    gbias = gr * 0.0
    if ACT == 1:
        ga = tl.where(a > 0.0, gr, 0.0)
        gb = tl.where(b > 0.0, gi, 0.0)
    elif ACT == 2:
        keep = (a >= 0.0) & (b >= 0.0)
        ga = tl.where(keep, gr, 0.0)
        gb = tl.where(keep, gi, 0.0)
    elif ACT == 3:
        # P = p, Q = s q with s = (r + bias) / r; dL/dbias = p
        ua, ub, inv, up, nonzero = _polar(a, b)
        active = nonzero & (1.0 + bias * up * inv > 0.0)
        p = ua * gr + ub * gi
        q = ua * gi - ub * gr
        sq = q + (bias * up) * (q * inv)
        ga = tl.where(active, ua * p - ub * sq, 0.0)
        gb = tl.where(active, ub * p + ua * sq, 0.0)
        gbias = tl.where(active, p, 0.0)
    elif ACT == 4:
        # P = h p, Q = h q - 0.5 u_b p with h = 0.5 (1 + u_a); 0.5 G at z = 0
        ua, ub, inv, up, nonzero = _polar(a, b)
        p = ua * gr + ub * gi
        q = ua * gi - ub * gr
        h = 0.5 * (1.0 + ua)
        P = h * p
        Q = h * q - 0.5 * ub * p
        ga = tl.where(nonzero, ua * P - ub * Q, 0.5 * gr)
        gb = tl.where(nonzero, ub * P + ua * Q, 0.5 * gi)
    else:
        ga = gr
        gb = gi
    return ga, gb, gbias


@triton.jit
def _load_tile(ptr, offs, mask):
    # [BLOCK, 2] tile of interleaved complex values -> (re, im), 64-bit offsets.
    idx = 2 * offs[:, None] + tl.arange(0, 2)[None, :]
    t = tl.load(ptr + idx, mask=mask[:, None], other=0.0)
    return tl.split(t)


@triton.jit
def _store_tile(ptr, offs, mask, re, im):
    idx = 2 * offs[:, None] + tl.arange(0, 2)[None, :]
    tl.store(ptr + idx, tl.join(re, im), mask=mask[:, None])


@triton.jit
def activation_fwd_kernel(x_ptr, bias_ptr, y_ptr, C, inner, chunks, ACT: tl.constexpr, BLOCK: tl.constexpr):
    pid = tl.program_id(0).to(tl.int64)
    row = pid // chunks
    col = (pid % chunks) * BLOCK + tl.arange(0, BLOCK)
    mask = col < inner
    offs = row * inner + col
    if ACT == 3:
        bias = tl.load(bias_ptr + row % C)
    else:
        bias = 0.0
    a, b = _load_tile(x_ptr, offs, mask)
    ya, yb = act_forward_math(a, b, bias, ACT)
    _store_tile(y_ptr, offs, mask, ya, yb)


@triton.jit
def activation_bwd_kernel(g_ptr, x_ptr, bias_ptr, gx_ptr, gbias_ptr, C, inner, chunks,
                          ACT: tl.constexpr, BLOCK: tl.constexpr):
    pid = tl.program_id(0).to(tl.int64)
    row = pid // chunks
    col = (pid % chunks) * BLOCK + tl.arange(0, BLOCK)
    mask = col < inner
    offs = row * inner + col
    if ACT == 3:
        bias = tl.load(bias_ptr + row % C)
    else:
        bias = 0.0
    a, b = _load_tile(x_ptr, offs, mask)
    gr, gi = _load_tile(g_ptr, offs, mask)
    ga, gb, gbias = act_backward_math(gr, gi, a, b, bias, ACT)
    _store_tile(gx_ptr, offs, mask, ga, gb)
    if ACT == 3:
        tl.store(gbias_ptr + pid, tl.sum(tl.where(mask, gbias, 0.0), axis=0))
