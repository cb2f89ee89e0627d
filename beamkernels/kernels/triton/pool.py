"""Triton kernels for max-pool by magnitude (spec: beamkernels/reference/pool.py).

x, out and grads are torch.view_as_real views of contiguous complex [N, C, H, W] tensors
(interleaved re, im). One program handles BLOCK outputs of the flattened [N*C*OH*OW] output;
each output scans its KH x KW window (unrolled) and keeps the first element with the largest
key re^2 + im^2 (strict >; a NaN key wins once and stays, as torch.argmax). Indices are per
plane, h * W + w. The backward scatters each output gradient to its argmax with atomic adds
(overlapping windows can hit the same element). 64-bit offsets throughout.
"""

import triton
import triton.language as tl


@triton.jit
def max_pool_fwd_kernel(x_ptr, out_ptr, idx_ptr, total, H, W, OH, OW, SH, SW, PH, PW, DH, DW,
                        KH: tl.constexpr, KW: tl.constexpr, BLOCK: tl.constexpr):
    pid = tl.program_id(0).to(tl.int64)
    o = pid * BLOCK + tl.arange(0, BLOCK)
    mask = o < total
    ow = o % OW
    t = o // OW
    oh = t % OH
    plane = t // OH
    base = plane * H * W
    zero = tl.zeros([BLOCK], dtype=x_ptr.dtype.element_ty)
    best = zero - float("inf")
    best_re = zero
    best_im = zero
    best_idx = tl.zeros([BLOCK], dtype=tl.int64)
    for i in tl.static_range(KH):
        h = oh * SH - PH + i * DH
        for j in tl.static_range(KW):
            w = ow * SW - PW + j * DW
            valid = mask & (h >= 0) & (h < H) & (w >= 0) & (w < W)
            pos = h * W + w
            src = 2 * (base + pos)
            re = tl.load(x_ptr + src, mask=valid, other=0.0)
            im = tl.load(x_ptr + src + 1, mask=valid, other=0.0)
            key = re * re + im * im
            take = valid & ((key > best) | ((key != key) & (best == best)))
            best = tl.where(take, key, best)
            best_re = tl.where(take, re, best_re)
            best_im = tl.where(take, im, best_im)
            best_idx = tl.where(take, pos, best_idx)
    tl.store(out_ptr + 2 * o, best_re, mask=mask)
    tl.store(out_ptr + 2 * o + 1, best_im, mask=mask)
    tl.store(idx_ptr + o, best_idx, mask=mask)


@triton.jit
def max_pool_bwd_kernel(g_ptr, idx_ptr, gx_ptr, total, OHW, HW, BLOCK: tl.constexpr):
    pid = tl.program_id(0).to(tl.int64)
    o = pid * BLOCK + tl.arange(0, BLOCK)
    mask = o < total
    plane = o // OHW
    idx = tl.load(idx_ptr + o, mask=mask, other=0)
    gr = tl.load(g_ptr + 2 * o, mask=mask, other=0.0)
    gi = tl.load(g_ptr + 2 * o + 1, mask=mask, other=0.0)
    # Out-of-plane indices (from a caller of the public backward op) are skipped, as by the CUDA
    # kernel, never written out of bounds.
    ok = mask & (idx >= 0) & (idx < HW)
    dst = 2 * (plane * HW + idx)
    tl.atomic_add(gx_ptr + dst, gr, mask=ok)
    tl.atomic_add(gx_ptr + dst + 1, gi, mask=ok)
