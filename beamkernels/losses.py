"""Training losses for precoder/combiner regression, all differentiable on complex tensors and
batched over any leading dims ([B, K, N, Ns] typically).

SVD targets are defined only up to a phase per column (and a unitary mix of columns whose
singular values coincide), so an element-wise MSE has an irreducible floor; the subspace and
projector losses are invariant to F -> F Q for unitary Q; -R (neg_rate_loss) needs no target.
"""

from __future__ import annotations

import torch

from beamkernels.metrics import _check_complex, gram_whiten, normalize_power, spectral_efficiency

__all__ = ["element_mse", "subspace_loss", "projector_mse", "neg_rate_loss"]


def _check_pair(F_hat, F_opt, fn):
    if not isinstance(F_hat, torch.Tensor) or not isinstance(F_opt, torch.Tensor):
        raise TypeError(f"{fn}: F_hat and F_opt must be tensors")
    if F_hat.shape != F_opt.shape:
        raise ValueError(f"{fn}: F_hat {list(F_hat.shape)} and F_opt {list(F_opt.shape)} must have the same shape")


def element_mse(F_hat: torch.Tensor, F_opt: torch.Tensor) -> torch.Tensor:
    """The thesis's loss: Keras' mean squared error over the real and imaginary parts, i.e.
    mean over all real numbers of [Re, Im] = mean |F_hat - F_opt|^2 / 2 for complex inputs.
    Real inputs (e.g. an already stacked [Re, Im] output) are used as they are.

    Equivalent to: torch.nn.functional.mse_loss(torch.view_as_real(F_hat), torch.view_as_real(F_opt))
    """
    _check_pair(F_hat, F_opt, "element_mse")
    if F_hat.is_complex() != F_opt.is_complex():
        raise TypeError("element_mse: F_hat and F_opt must both be complex or both be real")
    d = F_hat - F_opt
    if d.is_complex():
        return (d.real ** 2 + d.imag ** 2).mean() / 2
    return (d ** 2).mean()


def subspace_loss(F_hat: torch.Tensor, F_opt: torch.Tensor) -> torch.Tensor:
    """Chordal distance Ns - ||F_opt^H Q||_F^2, Q an orthonormal basis of span(F_hat), averaged over
    the leading dims. F_opt must have orthonormal columns (SVD targets do). Zero iff
    span(F_hat) = span(F_opt); in [0, Ns]. Computed without forming Q: with L L^H = F_hat^H F_hat,
    ||F_opt^H Q||_F^2 = ||L^-1 F_hat^H F_opt||_F^2 (F_hat must have full column rank).

    Equivalent to: Q = torch.linalg.qr(F_hat).Q; (Ns - torch.linalg.matrix_norm(F_opt.mH @ Q)**2).mean()
    """
    fn = "subspace_loss"
    _check_pair(F_hat, F_opt, fn)
    _check_complex(F_hat, fn, "F_hat")
    _check_complex(F_opt, fn, "F_opt")
    M = gram_whiten(F_hat, F_opt.to(F_hat.dtype), fn, "F_hat^H F_hat")
    Ns = F_opt.shape[-1]
    return (Ns - (M.real ** 2 + M.imag ** 2).sum(dim=(-2, -1))).mean()


def projector_mse(F_hat: torch.Tensor, F_opt: torch.Tensor, normalize: bool = True) -> torch.Tensor:
    """||F_opt F_opt^H - F_hat F_hat^H||_F^2 averaged over the leading dims, F_hat first scaled to
    ||F_hat||_F^2 = Ns (normalize=True, the power constraint). Unlike subspace_loss it also
    penalizes non-orthogonal or unequal-power columns of F_hat. Uses
    ||A A^H - B B^H||_F^2 = ||A^H A||^2 + ||B^H B||^2 - 2 ||A^H B||^2 (no N x N matrix).

    Equivalent to: (torch.linalg.matrix_norm(F_opt @ F_opt.mH - F_hat @ F_hat.mH) ** 2).mean()
    """
    fn = "projector_mse"
    _check_pair(F_hat, F_opt, fn)
    _check_complex(F_hat, fn, "F_hat")
    _check_complex(F_opt, fn, "F_opt")
    B = normalize_power(F_hat) if normalize else F_hat
    A = F_opt.to(B.dtype)

    def sq(X):
        return (X.real ** 2 + X.imag ** 2).sum(dim=(-2, -1))

    return (sq(A.mH @ A) + sq(B.mH @ B) - 2 * sq(A.mH @ B)).mean()


def neg_rate_loss(H: torch.Tensor, F: torch.Tensor, W: torch.Tensor, snr_db: float = 10.0) -> torch.Tensor:
    """Unsupervised loss -R(H, F, W) (mean spectral efficiency, bits/s/Hz; F normalized inside).

    Equivalent to: -beamkernels.metrics.spectral_efficiency(H, F, W, snr_db)
    """
    return -spectral_efficiency(H, F, W, snr_db, reduce="mean")
