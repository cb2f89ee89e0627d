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
from beamkernels._backend import resolve
from beamkernels._checks import check_complex, check_min_dim, check_real_param
from beamkernels.ops import _triton

BN_OP = "complex_batch_norm"
IMPLEMENTED: tuple[str, ...] = ("reference",)


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
    if not (isinstance(eps, (int, float)) and eps >= 0 and math.isfinite(eps)):
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
    backend = resolve(BN_OP, x.device, implemented=IMPLEMENTED)
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
    if not (isinstance(eps, (int, float)) and eps >= 0 and math.isfinite(eps)):
        raise ValueError(f"beamkernels.{op}: eps must be a finite float >= 0, got {eps!r}")
    backend = resolve(BN_OP, x.device, implemented=IMPLEMENTED)
    if backend == "reference":
        return ref.complex_layer_norm(x, normalized_shape, weight, bias, eps)
    # Every sample is one "channel" of a training-mode batch-norm over its own elements.
    lead = x.shape[: x.dim() - k]
    flat = x.reshape(1, -1, math.prod(normalized_shape))
    bn = torch.ops.beamkernels.triton_complex_batch_norm if backend == "triton" else torch.ops.beamkernels.complex_batch_norm
    h = bn(flat, None, None, None, None, float(eps))[0].reshape(*lead, *normalized_shape)
    if weight is not None:
        hr, hi = h.real, h.imag
        h = torch.complex(weight[..., 0] * hr + weight[..., 1] * hi, weight[..., 1] * hr + weight[..., 2] * hi)
    if bias is not None:
        h = h + torch.complex(bias[..., 0], bias[..., 1])
    return h


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
