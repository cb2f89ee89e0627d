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
    elif ACT == 3:  # modReLU: (1 + bias / r) z where r > 0 and r + bias > 0
        r2 = a * a + b * b
        r = tl.sqrt(tl.where(r2 > 0.0, r2, 1.0))
        s = tl.where((r2 > 0.0) & (r + bias > 0.0), 1.0 + bias / r, 0.0)
        ya = s * a
        yb = s * b
    elif ACT == 4:  # Cardioid: 0.5 (1 + a / r) z
        r2 = a * a + b * b
        r = tl.sqrt(tl.where(r2 > 0.0, r2, 1.0))
        s = 0.5 * (1.0 + tl.where(r2 > 0.0, a / r, 0.0))
        ya = s * a
        yb = s * b
    else:
        ya = a
        yb = b
    return ya, yb


@triton.jit
def act_backward_math(gr, gi, a, b, bias, ACT: tl.constexpr):
    """dL/dz (PyTorch convention) and, for modReLU, the per-element dL/dbias."""
    gbias = gr * 0.0
    if ACT == 1:
        ga = tl.where(a > 0.0, gr, 0.0)
        gb = tl.where(b > 0.0, gi, 0.0)
    elif ACT == 2:
        keep = (a >= 0.0) & (b >= 0.0)
        ga = tl.where(keep, gr, 0.0)
        gb = tl.where(keep, gi, 0.0)
    elif ACT == 3:
        # dL/dz = s G - bias z Re(conj(z) G) / r^3; dL/dbias = Re(conj(z) G) / r
        r2 = a * a + b * b
        r = tl.sqrt(tl.where(r2 > 0.0, r2, 1.0))
        active = (r2 > 0.0) & (r + bias > 0.0)
        inv_r = 1.0 / r
        s = 1.0 + bias * inv_r
        proj = a * gr + b * gi
        k = bias * proj * inv_r * inv_r * inv_r
        ga = tl.where(active, s * gr - k * a, 0.0)
        gb = tl.where(active, s * gi - k * b, 0.0)
        gbias = tl.where(active, proj * inv_r, 0.0)
    elif ACT == 4:
        # dL/da = h G_r + b^2 P, dL/db = h G_i - a b P; h = 0.5 (1 + a/r), P = 0.5 Re(conj(z) G) / r^3
        r2 = a * a + b * b
        nz = r2 > 0.0
        r = tl.sqrt(tl.where(nz, r2, 1.0))
        inv_r = 1.0 / r
        h = tl.where(nz, 0.5 * (1.0 + a * inv_r), 0.5)
        p = tl.where(nz, 0.5 * (a * gr + b * gi) * inv_r * inv_r * inv_r, 0.0)
        ga = h * gr + b * b * p
        gb = h * gi - a * b * p
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
