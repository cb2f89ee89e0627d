"""Complex normalization: whitening batch-norm (Trabelsi et al. 2018) and per-sample layer norm.

- ``beamkernels::complex_batch_norm(x, mean?, cov?, weight?, bias?, eps) -> (y, mean, cov)``:
  mean/cov None = training (batch statistics, computed in one pass and returned: mean [C, 2],
  biased covariance [C, 3]); given = eval (those statistics are used and returned as copies).
  ``complex_batch_norm_backward(grad, x, mean, cov, weight?, training, eps) -> (gx, gweight, gbias)``.
  Schemas in csrc/ops.cpp, kernels in csrc/cpu/norm.cpp (CPU) and csrc/cuda/norm.cu (CUDA).
- ``beamkernels::triton_complex_batch_norm`` / ``triton_complex_batch_norm_backward``: Triton.
- The public functions validate, resolve the backend and call one of the above or the
  reference (beamkernels/reference/norm.py, the specification). The running-statistics update
  (momentum, unbiased covariance) is done here, in PyTorch, for every backend (C numbers).

Layout (real tensors only, no complex buffers): running_mean [C, 2] = (Re, Im),
running_var [C, 3] = (Vrr, Vri, Vii), weight [C, 3] = (g_rr, g_ri, g_ii), bias [C, 2].
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from beamkernels import _ext
from beamkernels import reference as ref
from beamkernels.ops._dispatch import pick_backend
from beamkernels._checks import check_complex, check_min_dim, check_real_param
from beamkernels.reference.norm import batch_stats, layer_norm_affine, whiten_affine
from beamkernels.ops import _triton
from beamkernels.ops._autograd import recording, reference_vjp

BN_OP = "complex_batch_norm"
IMPLEMENTED: tuple[str, ...] = ("reference", "cpu", "cuda", "triton")


def _register_autograd(name: str, backward_op) -> None:
    """Autograd for a forward op (x, mean?, cov?, weight?, bias?, eps) -> (y, mean, cov); the
    returned statistics are not differentiable (the running-stat update is done under no_grad)."""

    def _setup(ctx, inputs, output):
        x, mean, cov, weight, bias, eps = inputs
        _, m_out, c_out = output
        ctx.training = mean is None
        ctx.eps = eps
        ctx.has_weight, ctx.has_bias = weight is not None, bias is not None
        ctx.save_for_backward(x, m_out, c_out, weight)
        ctx.mark_non_differentiable(m_out, c_out)

    def _backward(ctx, gy, _gm, _gc):
        x, mean, cov, weight = ctx.saved_tensors
        if recording():  # double backward: through the reference (see ops/_autograd.py)
            def y_of(x, w):  # the batch statistics are recomputed (differentiably) in training
                m, c = batch_stats(x) if ctx.training else (mean, cov)
                return whiten_affine(x, m, c, w, None, ctx.eps)

            need = ctx.needs_input_grad
            gx, gw = reference_vjp(y_of, [x, weight], [need[0], need[3]], gy)
            dims = [0] + list(range(2, gy.dim()))  # d/d(bias_r, bias_i) of y + (bias_r + i bias_i)
            gb = torch.stack([gy.real.sum(dims), gy.imag.sum(dims)], -1) if ctx.has_bias and need[4] else None
            return gx, None, None, gw, gb, None
        gx, gw, gb = backward_op(gy, x, mean, cov, weight, ctx.training, ctx.eps)
        return gx, None, None, gw if ctx.has_weight else None, gb if ctx.has_bias else None, None

    torch.library.register_autograd(name, _backward, setup_context=_setup)


def _fake_forward(x, mean, cov, weight, bias, eps):
    torch._check(x.is_complex(), lambda: "complex_batch_norm: x must be complex")
    torch._check(x.dim() >= 2, lambda: "complex_batch_norm: x must be [N, C, *]")
    real = x.dtype.to_real()
    c = x.shape[1]
    return x.new_empty(x.shape), x.new_empty((c, 2), dtype=real), x.new_empty((c, 3), dtype=real)


def _fake_backward(grad, x, mean, cov, weight, training, eps):
    real = x.dtype.to_real()
    c = x.shape[1]
    return x.new_empty(x.shape), x.new_empty((c, 3), dtype=real), x.new_empty((c, 2), dtype=real)


# ---- compiled (C++ / CUDA) ops: fake kernels and autograd ----
def register_compiled_norm(namespace: str = "beamkernels") -> None:
    """Fake kernels and autograd of <namespace>::complex_batch_norm (the C++ / CUDA op). Called once
    for the package's own op; tests/cuda_emu calls it for the emulated CUDA build."""
    torch.library.register_fake(f"{namespace}::complex_batch_norm")(_fake_forward)
    torch.library.register_fake(f"{namespace}::complex_batch_norm_backward")(_fake_backward)
    _register_autograd(f"{namespace}::complex_batch_norm", getattr(torch.ops, namespace).complex_batch_norm_backward)


if _ext.LOADED:
    register_compiled_norm()


# ---- Triton ops ----
_BLOCK = 1024


def _inv_sqrt_2x2(cov: Tensor, eps: float):
    """(Wrr, Wri, Wii, s, t) of (V + eps I)^(-1/2), float64 [C] each (csrc/norm.h inv_sqrt_2x2)."""
    vrr, vri, vii = cov[:, 0] + eps, cov[:, 1], cov[:, 2] + eps
    s = torch.sqrt(torch.clamp(vrr * vii - vri * vri, min=0.0))
    t = torch.sqrt(vrr + vii + 2 * s)
    inv = 1.0 / (s * t)
    return (vii + s) * inv, -vri * inv, (vrr + s) * inv, s, t


def _mat(weight: Tensor | None, c: int, like: Tensor) -> Tensor:
    """G [C, 2, 2] (float64) from weight [C, 3], or the identity."""
    if weight is None:
        return torch.eye(2, dtype=torch.float64, device=like.device).expand(c, 2, 2)
    w = weight.double()
    return torch.stack([w[:, 0], w[:, 1], w[:, 1], w[:, 2]], -1).view(c, 2, 2)


def _forward_coefs(mean: Tensor, cov: Tensor, weight: Tensor | None, bias: Tensor | None, eps: float,
                   real: torch.dtype) -> Tensor:
    """[C, 10] = (A = G W row-major, beta, m_hi, m_lo) as in csrc/norm.h bn_forward_coefs, in
    mean's dtype; ``mean`` may be float64 (m_lo carries what the input precision cannot)."""
    c = mean.shape[0]
    wrr, wri, wii, _, _ = _inv_sqrt_2x2(cov.double(), eps)
    w = torch.stack([wrr, wri, wri, wii], -1).view(c, 2, 2)
    a = (_mat(weight, c, mean) @ w).reshape(c, 4)
    beta = bias.double() if bias is not None else torch.zeros(c, 2, dtype=torch.float64, device=mean.device)
    mean = mean.double()
    hi = mean.to(real)
    lo = (mean - hi.double()).to(real)
    return torch.cat([a.to(real), beta.to(real), hi, lo], 1).contiguous()


def _backward_coefs(sums: Tensor, n: int, mean: Tensor, cov: Tensor, weight: Tensor | None, eps: float,
                    training: bool) -> tuple[Tensor, Tensor, Tensor]:
    """(grad_weight [C, 3], grad_bias [C, 2], coef [C, 11]) from the float64 sums [C, 6]
    (csrc/norm.h bn_backward_coefs, in matrix form)."""
    c = mean.shape[0]
    wrr, wri, wii, s, t = _inv_sqrt_2x2(cov.double(), eps)
    w = torch.stack([wrr, wri, wri, wii], -1).view(c, 2, 2)
    g = _mat(weight, c, mean)
    m = sums[:, 2:6].view(c, 2, 2)
    mw = m @ w
    gw = torch.stack([mw[:, 0, 0], mw[:, 0, 1] + mw[:, 1, 0], mw[:, 1, 1]], -1)
    k = w @ g
    if training and n > 0:
        b = -(w @ (g @ m) @ w)
        cmat = (b + s.view(c, 1, 1) * (w @ b @ w)) / (2 * t.view(c, 1, 1))
        pm = (cmat + cmat.transpose(1, 2)) / n
        q = -(k @ (sums[:, 0:2] / n).unsqueeze(-1)).squeeze(-1)
    else:
        pm = torch.zeros_like(k)
        q = torch.zeros(c, 2, dtype=torch.float64, device=mean.device)
    coef = torch.cat([k.reshape(c, 4), pm[:, 0, 0:1], pm[:, 0, 1:2], pm[:, 1, 1:2], q, mean.double()], 1)
    real = mean.dtype
    return gw.to(real), sums[:, 0:2].to(real), coef.to(real).contiguous()


if _triton.ENABLED:
    from typing import Optional

    import triton
    from torch.library import triton_op, wrap_triton

    from beamkernels.kernels.triton import norm as tk

    def _grid(x: Tensor) -> tuple[int, int, int, int, int]:
        """(N, C, inner, chunks, BLOCK) of x [N, C, *]: BLOCK-sized chunks of each (n, c) row,
        BLOCK = the power of 2 >= inner, at most _BLOCK (short rows waste no lanes)."""
        n, c = x.shape[0], x.shape[1]
        inner = x.numel() // (n * c) if n * c else 0
        block = max(16, min(_BLOCK, triton.next_power_of_2(max(inner, 1))))
        return n, c, inner, max(_triton.cdiv(inner, block), 1), block

    @triton_op("beamkernels::triton_complex_batch_norm", mutates_args=())
    def triton_complex_batch_norm(x: Tensor, mean: Optional[Tensor], cov: Optional[Tensor], weight: Optional[Tensor],
                                  bias: Optional[Tensor], eps: float) -> tuple[Tensor, Tensor, Tensor]:
        x = x.contiguous()
        y = torch.empty_like(x)
        n, c, inner, chunks, block = _grid(x)
        real = x.dtype.to_real()
        count = n * inner
        xr = torch.view_as_real(x)
        if mean is None:
            if count == 0:
                mean64 = torch.zeros(c, 2, dtype=torch.float64, device=x.device)
                cov64 = torch.zeros(c, 3, dtype=torch.float64, device=x.device)
                mean, cov = mean64.to(real), cov64.to(real)
            else:
                part = torch.empty(n * c * chunks, 5, dtype=real, device=x.device)
                wrap_triton(tk.bn_stats_kernel)[(n * c * chunks,)](xr, part, c, inner, chunks, BLOCK=block)
                sums = part.view(n, c, chunks, 5).double().sum(dim=(0, 2))
                shift = xr[0, :].reshape(c, -1, 2)[:, 0].double()  # x[0, c, 0]
                e = sums[:, 0:2] / count
                mean64 = shift + e
                cov64 = torch.stack([
                    torch.clamp(sums[:, 2] / count - e[:, 0] * e[:, 0], min=0.0),
                    sums[:, 3] / count - e[:, 0] * e[:, 1],
                    torch.clamp(sums[:, 4] / count - e[:, 1] * e[:, 1], min=0.0)], 1)
                mean, cov = mean64.to(real), cov64.to(real)
        else:
            mean, cov = mean.clone(), cov.clone()
            mean64, cov64 = mean.double(), cov.double()
        if count > 0:
            coef = _forward_coefs(mean64, cov64, weight, bias, eps, real)
            wrap_triton(tk.bn_apply_kernel)[(n * c * chunks,)](
                xr, coef, torch.view_as_real(y), c, inner, chunks, BLOCK=block)
        return y, mean, cov

    @triton_op("beamkernels::triton_complex_batch_norm_backward", mutates_args=())
    def triton_complex_batch_norm_backward(grad: Tensor, x: Tensor, mean: Tensor, cov: Tensor,
                                           weight: Optional[Tensor], training: bool,
                                           eps: float) -> tuple[Tensor, Tensor, Tensor]:
        x, grad, mean = x.contiguous(), grad.contiguous(), mean.contiguous()
        gx = torch.empty_like(x)
        n, c, inner, chunks, block = _grid(x)
        real = x.dtype.to_real()
        count = n * inner
        if count == 0:
            return gx, torch.zeros(c, 3, dtype=real, device=x.device), torch.zeros(c, 2, dtype=real, device=x.device)
        xr, gr = torch.view_as_real(x), torch.view_as_real(grad)
        part = torch.empty(n * c * chunks, 6, dtype=real, device=x.device)
        wrap_triton(tk.bn_bwd_reduce_kernel)[(n * c * chunks,)](gr, xr, mean, part, c, inner, chunks, BLOCK=block)
        sums = part.view(n, c, chunks, 6).double().sum(dim=(0, 2))
        gw, gb, coef = _backward_coefs(sums, count, mean, cov, weight, eps, training)
        wrap_triton(tk.bn_bwd_apply_kernel)[(n * c * chunks,)](
            gr, xr, coef, torch.view_as_real(gx), c, inner, chunks, BLOCK=block)
        return gx, gw, gb

    _register_autograd("beamkernels::triton_complex_batch_norm",
                       torch.ops.beamkernels.triton_complex_batch_norm_backward)


# ---- public functions ----
def _check_bn_args(x, running_mean, running_var, weight, bias, training, momentum, eps, op=BN_OP) -> int:
    """Validates; returns n, the number of values per channel (N * spatial)."""
    check_complex(x, op, "x")
    check_min_dim(x, 2, op, "x", "[N, C, *]: statistics are per channel, dim 1")
    c = x.shape[1]
    if (running_mean is None) != (running_var is None):
        raise ValueError(f"beamkernels.{op}: give both running_mean and running_var, or neither")
    if running_mean is not None:
        check_real_param(running_mean, x, op, "running_mean", (c, 2))
        check_real_param(running_var, x, op, "running_var", (c, 3))
    elif not training:
        raise ValueError(f"beamkernels.{op}: training=False needs running_mean and running_var "
                         f"(or use training=True for batch statistics)")
    if weight is not None:
        check_real_param(weight, x, op, "weight", (c, 3))
    if bias is not None:
        check_real_param(bias, x, op, "bias", (c, 2))
    if not (isinstance(eps, (int, float)) and 0 <= eps < math.inf):  # (no math.isfinite: it breaks dynamic-shape tracing)
        raise ValueError(f"beamkernels.{op}: eps must be a finite float >= 0, got {eps!r}")
    if not (isinstance(momentum, (int, float)) and 0 <= momentum <= 1):
        raise ValueError(f"beamkernels.{op}: momentum must be a float in [0, 1], got {momentum!r}")
    n = x.numel() // c if c else 0
    if training and n == 1:
        raise ValueError(f"beamkernels.{op}: Expected more than 1 value per channel when training, "
                         f"got input size {list(x.shape)}")
    return n


def _update_running(running_mean: Tensor, running_var: Tensor, mean: Tensor, cov: Tensor, n: int,
                    momentum: float) -> None:
    """running = (1 - momentum) running + momentum batch, covariance made unbiased (n / (n - 1)),
    exactly as torch.nn.BatchNorm updates running_mean / running_var. No update for n = 0."""
    if n == 0:
        return
    with torch.no_grad():
        running_mean.mul_(1 - momentum).add_(mean.detach(), alpha=momentum)
        running_var.mul_(1 - momentum).add_(cov.detach(), alpha=momentum * n / (n - 1) if n > 1 else momentum)


def complex_batch_norm(x: Tensor, running_mean: Tensor | None, running_var: Tensor | None,
                       weight: Tensor | None = None, bias: Tensor | None = None, training: bool = False,
                       momentum: float = 0.1, eps: float = 1e-5) -> Tensor:
    """Whitening batch-norm (Trabelsi et al. 2018, sec. 3.5) of complex x [N, C, *], per channel.

    ``y = G (V + eps I)^(-1/2) (x - m) + beta`` with m, V the mean and 2x2 covariance of
    (Re x, Im x) over N and the spatial dims (training, or no running buffers) or the running
    statistics (eval). In training the running buffers, if given, are updated in place with
    ``momentum`` and the unbiased covariance, as torch.nn.functional.batch_norm does.

    Args:
        x: complex64/complex128 [N, C, *].
        running_mean: real [C, 2] (Re, Im) or None. running_var: real [C, 3] (Vrr, Vri, Vii) or None.
        weight: real [C, 3] (g_rr, g_ri, g_ii) of the symmetric G, or None (G = I).
        bias: real [C, 2] (Re beta, Im beta), or None.

    Equivalent to: ``beamkernels.reference.complex_batch_norm(...)``, i.e. with
    ``d = torch.stack([x.real - m_r, x.imag - m_i])`` per channel, ``V = d d^T / n + eps I``,
    ``y = G V^(-1/2) d + beta`` (V^(-1/2) in closed form, see the README).
    """
    n = _check_bn_args(x, running_mean, running_var, weight, bias, training, momentum, eps)
    backend = pick_backend(BN_OP, x.device, implemented=IMPLEMENTED)
    if backend == "reference":
        return ref.complex_batch_norm(x, running_mean, running_var, weight, bias, training, momentum, eps)
    op = torch.ops.beamkernels.triton_complex_batch_norm if backend == "triton" else torch.ops.beamkernels.complex_batch_norm
    if training:
        y, mean, cov = op(x, None, None, weight, bias, float(eps))
        if running_mean is not None:
            _update_running(running_mean, running_var, mean, cov, n, momentum)
    else:
        y, _, _ = op(x, running_mean, running_var, weight, bias, float(eps))
    return y


def complex_layer_norm(x: Tensor, normalized_shape, weight: Tensor | None = None, bias: Tensor | None = None,
                       eps: float = 1e-5) -> Tensor:
    """Per-sample whitening over the trailing dims ``normalized_shape``, then a 2x2 affine per element.

    Each sample (each index of the leading dims) is whitened with the mean and 2x2 covariance of
    its own elements (never of other samples), then ``y = G_e x^ + beta_e`` with one symmetric
    G_e = weight[..., (g_rr, g_ri, g_ii)] and beta_e = bias[..., (re, im)] per element of
    normalized_shape: weight [*normalized_shape, 3], bias [*normalized_shape, 2].

    Equivalent to: ``beamkernels.reference.complex_layer_norm(x, normalized_shape, weight, bias, eps)``
    (the whitening of complex_batch_norm applied to ``x.reshape(1, -1, *normalized_shape)``).
    """
    op = "complex_layer_norm"
    check_complex(x, op, "x")
    normalized_shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    k = len(normalized_shape)
    if k == 0 or tuple(x.shape[x.dim() - k:]) != normalized_shape or x.dim() < k:
        raise ValueError(f"beamkernels.{op}: the trailing dims of x must equal normalized_shape "
                         f"{list(normalized_shape)}, got x of shape {list(x.shape)}")
    if weight is not None:
        check_real_param(weight, x, op, "weight", normalized_shape + (3,))
    if bias is not None:
        check_real_param(bias, x, op, "bias", normalized_shape + (2,))
    if not (isinstance(eps, (int, float)) and 0 <= eps < math.inf):  # (no math.isfinite: it breaks dynamic-shape tracing)
        raise ValueError(f"beamkernels.{op}: eps must be a finite float >= 0, got {eps!r}")
    backend = pick_backend(op, x.device, implemented=IMPLEMENTED)
    if backend == "reference":
        return ref.complex_layer_norm(x, normalized_shape, weight, bias, eps)
    # Every sample is one "channel" of a training-mode batch-norm over its own elements.
    lead = x.shape[: x.dim() - k]
    flat = x.reshape(1, -1, math.prod(normalized_shape))
    bn = torch.ops.beamkernels.triton_complex_batch_norm if backend == "triton" else torch.ops.beamkernels.complex_batch_norm
    h = bn(flat, None, None, None, None, float(eps))[0].reshape(*lead, *normalized_shape)
    return layer_norm_affine(h, weight, bias)


def naive_complex_batch_norm(x: Tensor, running_mean: Tensor | None, running_var: Tensor | None,
                             weight: Tensor | None = None, bias: Tensor | None = None, training: bool = False,
                             momentum: float = 0.1, eps: float = 1e-5) -> Tensor:
    """Two independent real batch-norms on Re x and Im x (no whitening; for comparison only).

    running_mean [C, 2], running_var [C, 2], weight [C, 2], bias [C, 2] (column 0: real part,
    column 1: imaginary part). Runs torch.nn.functional.batch_norm on each part on every backend.

    Equivalent to: ``torch.complex(F.batch_norm(x.real, ...[:, 0]), F.batch_norm(x.imag, ...[:, 1]))``.
    """
    op = "naive_complex_batch_norm"
    check_complex(x, op, "x")
    check_min_dim(x, 2, op, "x", "[N, C, *]: statistics are per channel, dim 1")
    c = x.shape[1]
    for name, t in (("running_mean", running_mean), ("running_var", running_var), ("weight", weight), ("bias", bias)):
        if t is not None:
            check_real_param(t, x, op, name, (c, 2))
    if training and x.numel() // max(c, 1) == 1:
        raise ValueError(f"beamkernels.{op}: Expected more than 1 value per channel when training, "
                         f"got input size {list(x.shape)}")
    return ref.naive_complex_batch_norm(x, running_mean, running_var, weight, bias, training, momentum, eps)
