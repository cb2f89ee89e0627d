"""Output normalizations shared by every model of the zoo.

- Precoder F [B, K, Nt, Ns]: scaled per subcarrier to the power constraint ||F_k||_F^2 = Ns
  (El Ayach eq. 3; the spectral efficiency is evaluated under that constraint).
- Combiner W [B, K, Nr, Ns]: each column scaled to unit norm (the rate formula has
  (W^H W)^-1, so only the column space of W matters; unit columns keep the scale fixed).
- ``matched_combiner(H, F)``: for a model that predicts only F, the receiver that is optimal for
  that F: an orthonormal basis of the column space of H_k F_k (the same subspace as its left
  singular vectors, computed by QR, which is differentiable and stable when singular values
  are close). With W spanning col(H_k F_k), R(H, F, W) = log2 det(I + rho/Ns F^H H^H H F), the
  best rate any combiner (MMSE receiver included) reaches with that F.
"""

from __future__ import annotations

import torch
from torch import Tensor


def _unit_columns(X: Tensor) -> Tensor:
    """The first Ns unit vectors of C^N, shaped like X [..., N, Ns] (a fixed full-rank fallback)."""
    return torch.eye(X.shape[-2], X.shape[-1], dtype=X.dtype, device=X.device).expand(X.shape)


def scale_to_power(X: Tensor, dims, power: float, zero_to_unit: bool = True) -> Tensor:
    """X scaled so that sum over ``dims`` of |X|^2 = ``power``, at any scale of X: X is first divided
    by its largest modulus over ``dims`` (so X ~ 1e-8, from unnormalized channels, works too). An
    all-zero X becomes the unit columns (zero_to_unit) or stays zero."""
    big = X.abs().amax(dim=dims, keepdim=True)
    tiny = torch.finfo(big.dtype).tiny
    Xs = X / big.clamp_min(tiny).to(X.dtype)
    p = Xs.abs().square().sum(dim=dims, keepdim=True)  # >= 1 unless X = 0
    out = Xs * torch.rsqrt(p.clamp_min(tiny) / power).to(X.dtype)
    return torch.where(p > 0, out, _unit_columns(X)) if zero_to_unit else out


def normalize_precoder(F: Tensor) -> Tensor:
    """F [..., Nt, Ns] scaled so that ||F||_F^2 = Ns for every leading index (subcarrier), at any
    scale of F; F = 0 becomes the first Ns unit vectors."""
    return scale_to_power(F, (-2, -1), F.shape[-1])


def normalize_columns(W: Tensor) -> Tensor:
    """W [..., N, Ns] with every column scaled to unit Euclidean norm, at any scale; a zero column
    becomes the unit vector of its index."""
    return scale_to_power(W, -2, 1.0)


def orthonormal_basis(X: Tensor) -> Tensor:
    """Orthonormal basis (reduced QR) of the column space of X [..., N, Ns], Ns <= N.

    Where X is (numerically) rank-deficient (a zero subcarrier of H, a rank-1 channel), QR's
    backward divides by R's vanishing diagonal and one such subcarrier made every gradient of the
    batch NaN; there X is first nudged by a small multiple of the first Ns unit vectors
    (sqrt(eps) of ||X||_F; the unit vectors themselves when X = 0), which keeps the part of the
    column space X has. Full-rank X is left exactly as it is."""
    n, ns = X.shape[-2], X.shape[-1]
    if ns > n:
        raise ValueError(f"orthonormal_basis: {ns} columns have no orthonormal basis in C^{n} (Ns must be <= {n})")
    with torch.no_grad():
        d = torch.linalg.qr(X).R.diagonal(dim1=-2, dim2=-1).abs().amin(-1)  # [...]
        scale = X.abs().square().sum(dim=(-2, -1)).sqrt()
        rtol = torch.finfo(scale.dtype).eps ** 0.5
        nudge = torch.where(scale > 0, rtol * scale, torch.ones_like(scale))
        nudge = torch.where(d <= rtol * scale, nudge, torch.zeros_like(nudge))
    return torch.linalg.qr(X + nudge[..., None, None].to(X.dtype) * _unit_columns(X)).Q


def matched_combiner(H: Tensor, F: Tensor) -> Tensor:
    """W [..., Nr, Ns]: orthonormal basis (QR, orthonormal_basis) of the column space of H F
    (H [..., Nr, Nt], F [..., Nt, Ns]). Equivalent to: ``torch.linalg.qr(H @ F).Q`` (unit columns)."""
    return orthonormal_basis(H @ F)


def split_outputs(F: Tensor, W: Tensor) -> tuple[Tensor, Tensor]:
    """Apply both normalizations (every model ends with this)."""
    return normalize_precoder(F), normalize_columns(W)
