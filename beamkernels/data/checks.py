"""Data errors and the target check (are the stored Fopt/Wopt really the SVD targets of H?)."""

from __future__ import annotations

from typing import Optional, Sequence, Union

import torch

from beamkernels.metrics import spectral_efficiency, svd_bound


class ChannelDataError(ValueError):
    """Bad channel data: missing variable, wrong shape, real where complex is needed, NaN/Inf,
    truncated or unknown file, targets that are not the SVD targets of H. The message names the
    file (or sample) and the variable."""


def check_targets(H: torch.Tensor, Fopt: torch.Tensor, Wopt: torch.Tensor, snr_db: float = 10.0,
                  rtol: float = 1e-3, names: Optional[Union[str, Sequence[str]]] = None) -> None:
    """Raise ChannelDataError unless R(H, Fopt, Wopt) equals the closed form
    sum_i log2(1 + rho/Ns s_i^2) for every sample and subcarrier (within rtol).

    H [..., K, Nr, Nt], Fopt [..., K, Nt, Ns], Wopt [..., K, Nr, Ns]. ``names``: one label per
    sample (first dim) or one label for all, used in the message. Catches axis-order mistakes
    (a reshape instead of a transpose, swapped subcarriers, V^H stored instead of V, ...), which
    leave shapes right but scramble the targets, and targets whose columns are not orthonormal
    (a scale R cannot see: Fopt = V[:, :Ns], Wopt = U[:, :Ns]). Evaluated in complex128.
    """
    def label(i):
        if names is None:
            return f"sample {i}"
        if isinstance(names, str):
            return f"{names} (sample {i})"
        return names[i]

    if H.dim() < 3 or Fopt.dim() != H.dim() or Wopt.dim() != H.dim():
        raise ChannelDataError(f"check_targets: need H [..., K, Nr, Nt], Fopt [..., K, Nt, Ns], Wopt [..., K, Nr, Ns] "
                               f"with the same leading dims; got {list(H.shape)}, {list(Fopt.shape)}, {list(Wopt.shape)}")
    H, F, W = (x.to(torch.complex128) for x in (H, Fopt, Wopt))
    Ns = F.shape[-1]
    try:
        r = spectral_efficiency(H, F, W, snr_db, reduce="none")
    except ValueError as e:  # singular W^H W: Wopt cannot be SVD targets; name the first such sample
        info = torch.linalg.cholesky_ex(W.mH @ W).info  # [..., K]: nonzero where W^H W is not positive definite
        idx = (info != 0).nonzero()
        at = idx[0].tolist() if len(idx) else [0] * info.dim()
        i, k = (at[0] if info.dim() >= 2 else 0), at[-1]
        raise ChannelDataError(f"check_targets: {label(i)}, subcarrier {k}: Wopt's {Ns} columns are linearly dependent "
                               f"(W^H W is singular), so Wopt cannot be SVD targets ({e})") from None
    # R is blind to the targets' scale (F is power-normalized inside, W enters through its column
    # space); the models' outputs are F with ||F_k||_F^2 = Ns and W with unit-norm columns, as
    # V[:, :Ns] and U[:, :Ns]: a scaled target would leave element-wise losses (MSE) unreachable.
    for what, X in (("Fopt", F), ("Wopt", W)):
        eye = torch.eye(Ns, dtype=X.dtype)
        dev = (X.mH @ X - eye).abs().amax(dim=(-2, -1))  # [..., K]
        tol = max(10 * rtol, 1e-4)
        if bool((dev > tol).any()):
            idx = (dev > tol).nonzero()[0].tolist()
            i = idx[0] if dev.dim() >= 2 else 0
            k = idx[-1]
            power = (X[tuple(idx)].abs() ** 2).sum().item()
            raise ChannelDataError(
                f"check_targets: {label(i)}, subcarrier {k}: {what}'s columns are not orthonormal ({what}^H {what} differs "
                f"from I by {dev[tuple(idx)].item():.3g} > {tol:g}; ||{what}||_F^2 = {power:.6g}, expected Ns = {Ns}): SVD "
                f"targets are {'V' if what == 'Fopt' else 'U'}[:, :Ns]. A scaled or otherwise normalized target cannot be "
                f"matched by the models' outputs under an element-wise loss; rescale it, or load with check=False.")
    bound = svd_bound(H, Ns, snr_db, reduce="none")
    bad = ~((r - bound).abs() <= rtol * bound.clamp_min(1e-3))
    if bool(bad.any()):
        idx = bad.nonzero()[0].tolist()
        i = idx[0] if r.dim() >= 2 else 0
        k = idx[-1]
        n_bad = int(bad.sum())
        raise ChannelDataError(
            f"check_targets: {label(i)}, subcarrier {k}: R(H, Fopt, Wopt) = {r[tuple(idx)].item():.6g} bits/s/Hz but the SVD "
            f"bound of H is {bound[tuple(idx)].item():.6g} at {snr_db} dB ({n_bad} of {bad.numel()} (sample, subcarrier) pairs "
            f"fail, rtol={rtol}): the stored Fopt/Wopt are not the SVD targets of the stored H. Check the axis order "
            f"(MATLAB layout: H [Nr, Nt, K], Fopt [Nt, Ns, K], Wopt [Nr, Ns, K]; v7.3/HDF5 axes come reversed and must be "
            f"transposed, not reshaped) and that Fopt holds V (not V^H)."
        )
