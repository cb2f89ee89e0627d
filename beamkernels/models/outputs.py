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

_EPS = 1e-12


def normalize_precoder(F: Tensor, eps: float = _EPS) -> Tensor:
    """F [..., Nt, Ns] scaled so that ||F||_F^2 = Ns for every leading index (subcarrier)."""
    ns = F.shape[-1]
    power = F.abs().square().sum(dim=(-2, -1), keepdim=True)
    return F * torch.rsqrt(power.clamp_min(eps) / ns).to(F.dtype)


def normalize_columns(W: Tensor, eps: float = _EPS) -> Tensor:
    """W [..., N, Ns] with every column scaled to unit Euclidean norm."""
    norm = W.abs().square().sum(dim=-2, keepdim=True)
    return W * torch.rsqrt(norm.clamp_min(eps)).to(W.dtype)


def matched_combiner(H: Tensor, F: Tensor) -> Tensor:
    """W [..., Nr, Ns]: orthonormal basis (QR) of the column space of H F (H [..., Nr, Nt],
    F [..., Nt, Ns]). Equivalent to: ``torch.linalg.qr(H @ F).Q`` (unit columns)."""
    Q, _ = torch.linalg.qr(H @ F)
    return Q


def split_outputs(F: Tensor, W: Tensor) -> tuple[Tensor, Tensor]:
    """Apply both normalizations (every model ends with this)."""
    return normalize_precoder(F), normalize_columns(W)
