"""Complex normalization in plain PyTorch (the specification).

Whitening batch-norm (Trabelsi et al. 2018, sec. 3.5), per channel c of x [N, C, *]:

    m = E[x]                                   (mean over N and the spatial dims)
    V = [[Vrr, Vri], [Vri, Vii]] + eps I       (biased covariance of (Re x - Re m, Im x - Im m))
    s = sqrt(det V), t = sqrt(Vrr + Vii + 2 s)
    W = V^(-1/2) = [[Vii + s, -Vri], [-Vri, Vrr + s]] / (s t)     (closed form, 2x2 SPD)
    x^ = W [Re x - Re m; Im x - Im m]
    y = G x^ + beta,  G = [[g_rr, g_ri], [g_ri, g_ii]],  beta = b_r + i b_i

Tensor layout (real tensors only, so that state_dicts and exported graphs hold no complex
buffers): ``mean`` [C, 2] = (Re m, Im m); ``cov`` [C, 3] = (Vrr, Vri, Vii) without eps;
``weight`` [C, 3] = (g_rr, g_ri, g_ii); ``bias`` [C, 2] = (Re beta, Im beta). The running
covariance is stored unbiased (n / (n - 1) times the batch covariance), as torch.nn.BatchNorm
stores its running variance; eps is added on the diagonal whenever a covariance is used.

Layer norm whitens each sample over its trailing ``normalized_shape`` dims (never across the
batch), then applies the same 2x2 affine with one (G, beta) per element of normalized_shape.
"""

from __future__ import annotations

import torch
from torch import Tensor


def batch_stats(x: Tensor) -> tuple[Tensor, Tensor]:
    """(mean [C, 2], biased covariance [C, 3] = (Vrr, Vri, Vii)) of x [N, C, *] per channel."""
    dims = [0] + list(range(2, x.dim()))
    xr, xi = x.real, x.imag
    mr, mi = xr.mean(dims), xi.mean(dims)
    shape = (1, -1) + (1,) * (x.dim() - 2)
    dr, di = xr - mr.view(shape), xi - mi.view(shape)
    vrr, vri, vii = (dr * dr).mean(dims), (dr * di).mean(dims), (di * di).mean(dims)
    return torch.stack([mr, mi], -1), torch.stack([vrr, vri, vii], -1)


def inverse_sqrt_2x2(cov: Tensor, eps: float) -> tuple[Tensor, Tensor, Tensor]:
    """(Wrr, Wri, Wii) of W = (V + eps I)^(-1/2) for V = cov [..., 3] = (Vrr, Vri, Vii)."""
    vrr, vri, vii = cov[..., 0] + eps, cov[..., 1], cov[..., 2] + eps
    s = torch.sqrt(vrr * vii - vri * vri)
    t = torch.sqrt(vrr + vii + 2 * s)
    inv = 1.0 / (s * t)
    return (vii + s) * inv, -vri * inv, (vrr + s) * inv


def whiten_affine(x: Tensor, mean: Tensor, cov: Tensor, weight: Tensor | None, bias: Tensor | None,
                  eps: float) -> Tensor:
    """y = G W (x - m) + beta with per-channel (dim 1) mean [C, 2], cov [C, 3], weight [C, 3], bias [C, 2]."""
    shape = (1, -1) + (1,) * (x.dim() - 2)

    def ch(t: Tensor) -> Tensor:
        return t.reshape(shape)

    wrr, wri, wii = inverse_sqrt_2x2(cov, eps)
    dr, di = x.real - ch(mean[:, 0]), x.imag - ch(mean[:, 1])
    hr = ch(wrr) * dr + ch(wri) * di
    hi = ch(wri) * dr + ch(wii) * di
    if weight is not None:
        grr, gri, gii = ch(weight[:, 0]), ch(weight[:, 1]), ch(weight[:, 2])
        hr, hi = grr * hr + gri * hi, gri * hr + gii * hi
    if bias is not None:
        hr, hi = hr + ch(bias[:, 0]), hi + ch(bias[:, 1])
    return torch.complex(hr, hi)


def complex_batch_norm(x: Tensor, running_mean: Tensor | None, running_var: Tensor | None,
                       weight: Tensor | None = None, bias: Tensor | None = None, training: bool = False,
                       momentum: float = 0.1, eps: float = 1e-5) -> Tensor:
    """Whitening batch-norm of x [N, C, *] (see the module docstring for the layout).

    training=True: batch statistics, gradients flow through them, and the running buffers (if
    given) are updated in place: running = (1 - momentum) running + momentum batch, with the
    unbiased covariance (n / (n - 1)). training=False: the running statistics are used.
    """
    if training:
        mean, cov = batch_stats(x)
        n = x.numel() // x.shape[1] if x.shape[1] else 0
        if running_mean is not None and running_var is not None and n > 0:
            with torch.no_grad():
                running_mean.mul_(1 - momentum).add_(mean.detach(), alpha=momentum)
                unbiased = cov.detach() * (n / (n - 1) if n > 1 else 1.0)
                running_var.mul_(1 - momentum).add_(unbiased, alpha=momentum)
    else:
        mean, cov = running_mean, running_var
    return whiten_affine(x, mean, cov, weight, bias, eps)


def layer_norm_affine(h: Tensor, weight: Tensor | None, bias: Tensor | None) -> Tensor:
    """The per-element symmetric 2x2 affine of the layer norm: G = [[w0, w1], [w1, w2]] on
    (Re h, Im h), then + (b0 + i b1)."""
    if weight is not None:
        hr, hi = h.real, h.imag
        h = torch.complex(weight[..., 0] * hr + weight[..., 1] * hi, weight[..., 1] * hr + weight[..., 2] * hi)
    if bias is not None:
        h = h + torch.complex(bias[..., 0], bias[..., 1])
    return h


def complex_layer_norm(x: Tensor, normalized_shape: tuple[int, ...], weight: Tensor | None = None,
                       bias: Tensor | None = None, eps: float = 1e-5) -> Tensor:
    """Per-sample whitening over the trailing dims ``normalized_shape`` of x, then the 2x2 affine
    per element: weight [*normalized_shape, 3], bias [*normalized_shape, 2]."""
    k = len(normalized_shape)
    lead = x.shape[: x.dim() - k]
    flat = x.reshape(1, -1, *normalized_shape) if k else x.reshape(1, -1, 1)
    # Every sample (leading index) becomes one "channel" of a batch-norm over its own elements.
    mean, cov = batch_stats(flat)
    h = whiten_affine(flat, mean, cov, None, None, eps).reshape(*lead, *normalized_shape)
    return layer_norm_affine(h, weight, bias)


def naive_complex_batch_norm(x: Tensor, running_mean: Tensor | None, running_var: Tensor | None,
                             weight: Tensor | None = None, bias: Tensor | None = None, training: bool = False,
                             momentum: float = 0.1, eps: float = 1e-5) -> Tensor:
    """Independent real batch-norms on Re x and Im x (no whitening; for comparison).

    running_mean [C, 2], running_var [C, 2] = (var Re, var Im), weight [C, 2], bias [C, 2]:
    column 0 belongs to the real part, column 1 to the imaginary part."""
    # F.batch_norm updates its running buffers in place: give it contiguous rows and copy back.
    rm = None if running_mean is None else running_mean.t().contiguous()
    rv = None if running_var is None else running_var.t().contiguous()
    parts = []
    for j, t in enumerate((x.real, x.imag)):
        parts.append(torch.nn.functional.batch_norm(
            t, None if rm is None else rm[j], None if rv is None else rv[j],
            None if weight is None else weight[:, j], None if bias is None else bias[:, j],
            training, momentum, eps))
    if training and running_mean is not None and running_var is not None:
        with torch.no_grad():
            running_mean.copy_(rm.t())
            running_var.copy_(rv.t())
    return torch.complex(parts[0], parts[1])
