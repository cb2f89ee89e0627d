"""Spectral efficiency, the SVD upper bound, SNR sweeps and the OMP hybrid precoding baseline.

Definitions (O. El Ayach et al., "Spatially Sparse Precoding in Millimeter Wave MIMO Systems",
IEEE TWC 13(3), 2014, eq. 7 and Algorithms 1-2), noise variance 1, rho = 10^(snr_db/10):

    R = log2 det(I_Ns + (rho/Ns) (W^H W)^-1 W^H H F F^H H^H W),   ||F||_F^2 = Ns per subcarrier,

evaluated per subcarrier. The SVD solution attains R = sum_i log2(1 + (rho/Ns) s_i^2), the bound
for Ns equal-power streams. Shapes: H [..., K, Nr, Nt], F [..., K, Nt, Ns], W [..., K, Nr, Ns]
(any leading dims; K is just the last leading dim).
"""

from __future__ import annotations

import math
from typing import Callable, Optional, Sequence, Tuple, Union

import torch

__all__ = [
    "spectral_efficiency",
    "svd_bound",
    "snr_sweep",
    "se_vs_snr",
    "normalize_power",
    "omp_precoder",
    "omp_combiner",
    "mmse_combiner",
    "omp_rate",
]


def _check_complex(x, fn: str, arg: str) -> None:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{fn}: '{arg}' must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_complex():
        raise TypeError(f"{fn}: '{arg}' must be a complex tensor, got dtype {x.dtype}")


def _reduce(r: torch.Tensor, reduce: str, fn: str) -> torch.Tensor:
    if reduce == "mean":
        return r.mean()
    if reduce == "none":
        return r
    raise ValueError(f"{fn}: reduce must be 'mean' or 'none', got {reduce!r}")


def _rho(snr_db) -> float:
    return 10.0 ** (float(snr_db) / 10.0)


def normalize_power(F: torch.Tensor, Ns: Optional[int] = None) -> torch.Tensor:
    """Scale each [Nt, Ns] matrix so that ||F||_F^2 = Ns (Ns = F.shape[-1] by default)."""
    Ns = F.shape[-1] if Ns is None else Ns
    norm = torch.linalg.matrix_norm(F).clamp_min(torch.finfo(F.real.dtype).tiny)
    return F * (math.sqrt(Ns) / norm)[..., None, None]


def _chol(G: torch.Tensor, fn: str, what: str) -> torch.Tensor:
    """Cholesky factor of a Hermitian PD Gram matrix, with a clear error when it is singular."""
    L, info = torch.linalg.cholesky_ex(G)
    if bool((info != 0).any()):
        raise ValueError(f"{fn}: {what} is singular (rank-deficient or non-finite columns); cannot evaluate")
    return L


def gram_whiten(W: torch.Tensor, X: torch.Tensor, fn: str = "gram_whiten", what: str = "W^H W") -> torch.Tensor:
    """M = L^-1 W^H X with L L^H = W^H W, so that M^H M = X^H W (W^H W)^-1 W^H X
    (projection of X onto span(W)); differentiable through cholesky and a triangular solve."""
    L = _chol(W.mH @ W, fn, what)
    return torch.linalg.solve_triangular(L, W.mH @ X, upper=False)


def _check_sef(H, F, W, fn):
    _check_complex(H, fn, "H")
    _check_complex(F, fn, "F")
    _check_complex(W, fn, "W")
    if H.dim() < 2 or F.dim() < 2 or W.dim() < 2:
        raise ValueError(f"{fn}: H, F, W must be matrices [..., K, Nr, Nt], [..., K, Nt, Ns], [..., K, Nr, Ns]; "
                         f"got {list(H.shape)}, {list(F.shape)}, {list(W.shape)}")
    Nr, Nt = H.shape[-2:]
    if F.shape[-2] != Nt or W.shape[-2] != Nr or F.shape[-1] != W.shape[-1]:
        raise ValueError(f"{fn}: shapes do not match: H {list(H.shape)} is [..., Nr, Nt], need F [..., Nt={Nt}, Ns] and "
                         f"W [..., Nr={Nr}, Ns] with the same Ns; got F {list(F.shape)}, W {list(W.shape)}")
    try:
        torch.broadcast_shapes(H.shape[:-2], F.shape[:-2], W.shape[:-2])
    except RuntimeError:
        raise ValueError(f"{fn}: the leading dims of H {list(H.shape)}, F {list(F.shape)} and W {list(W.shape)} "
                         f"do not broadcast") from None
    if not (H.device == F.device == W.device):
        raise ValueError(f"{fn}: H, F, W must be on one device, got {H.device}, {F.device}, {W.device}")


def spectral_efficiency(H: torch.Tensor, F: torch.Tensor, W: torch.Tensor, snr_db: float = 10.0,
                        reduce: str = "mean") -> torch.Tensor:
    """Achievable rate in bits/s/Hz (El Ayach eq. 7), noise variance 1.

    F is normalized inside to ||F_k||_F^2 = Ns per subcarrier; R depends on W only through its
    column span. reduce="mean": the mean over every leading dim (subcarriers and samples);
    "none": shape H.shape[:-2]. Differentiable. Computed as 2 sum log diag chol(I + rho/Ns M M^H)
    with M = L^-1 W^H H F (L L^H = W^H W), the Hermitian PD form of the same determinant.

    Equivalent to: torch.log2(torch.linalg.det(I + rho/Ns * torch.linalg.inv(W.mH@W) @ W.mH@H@F@F.mH@H.mH@W)).real
    """
    fn = "spectral_efficiency"
    _check_sef(H, F, W, fn)
    dtype = torch.promote_types(torch.promote_types(H.dtype, F.dtype), W.dtype)
    H, F, W = H.to(dtype), F.to(dtype), W.to(dtype)
    Ns = F.shape[-1]
    F = normalize_power(F, Ns)
    M = gram_whiten(W, H @ F, fn, "W^H W")  # [..., Ns, Ns]
    eye = torch.eye(Ns, dtype=dtype, device=H.device)
    A = eye + (_rho(snr_db) / Ns) * (M @ M.mH)
    L = _chol(A, fn, "I + rho/Ns M M^H")
    r = 2.0 * torch.log2(torch.diagonal(L, dim1=-2, dim2=-1).real).sum(-1)
    return _reduce(r, reduce, fn)


def svd_bound(H: torch.Tensor, Ns: int, snr_db: float = 10.0, reduce: str = "mean") -> torch.Tensor:
    """The SVD upper bound sum_{i<=Ns} log2(1 + (rho/Ns) s_i^2) per subcarrier (the rate of the
    optimal unconstrained precoder/combiner with equal power over Ns streams)."""
    fn = "svd_bound"
    _check_complex(H, fn, "H")
    if not 1 <= Ns <= min(H.shape[-2:]):
        raise ValueError(f"{fn}: need 1 <= Ns <= min(Nr, Nt)={min(H.shape[-2:])}, got Ns={Ns}")
    s = torch.linalg.svdvals(H)[..., :Ns]
    r = torch.log2(1.0 + (_rho(snr_db) / Ns) * s * s).sum(-1)
    return _reduce(r, reduce, fn)


def snr_sweep(H: torch.Tensor, F: torch.Tensor, W: torch.Tensor, snrs_db: Sequence[float],
              reduce: str = "mean") -> torch.Tensor:
    """spectral_efficiency at each SNR: shape [len(snrs_db)] (reduce="mean") or
    [len(snrs_db), *H.shape[:-2]] ("none")."""
    return torch.stack([spectral_efficiency(H, F, W, s, reduce=reduce) for s in snrs_db])


def se_vs_snr(fn_or_F: Union[Callable[[float], Tuple[torch.Tensor, torch.Tensor]], torch.Tensor],
              H: torch.Tensor, snrs_db: Sequence[float], W: Optional[torch.Tensor] = None,
              reduce: str = "mean") -> torch.Tensor:
    """Like snr_sweep, for precoders that depend on the SNR: ``fn_or_F`` is either F (then W is
    required) or a callable snr_db -> (F, W)."""
    out = []
    for s in snrs_db:
        if callable(fn_or_F):
            F, Ws = fn_or_F(s)
        else:
            if W is None:
                raise ValueError("se_vs_snr: W is required when fn_or_F is a tensor")
            F, Ws = fn_or_F, W
        out.append(spectral_efficiency(H, F, Ws, s, reduce=reduce))
    return torch.stack(out)


# ---------------------------------------------------------------------------------------------
# OMP (El Ayach Algorithms 1 and 2), wideband: one common analog matrix, per-subcarrier digital.
# ---------------------------------------------------------------------------------------------

def _as_batched(x: torch.Tensor, nd: int) -> Tuple[torch.Tensor, bool]:
    if x.dim() == nd - 1:
        return x.unsqueeze(0), True
    return x, False


def _omp(target: torch.Tensor, A: torch.Tensor, n_rf: int, cov: Optional[torch.Tensor], fn: str):
    """Greedy selection of n_rf dictionary rows of A [B, L, N] (array responses as rows) to
    approximate target [B, K, N, Ns] with one common analog matrix and per-subcarrier LS digital
    weights, in the metric given by cov [B, K, N, N] (None = identity: Alg. 1; the received
    covariance E[y y^H]: Alg. 2). Scores are summed over subcarriers."""
    B, K, N, Ns = target.shape
    L = A.shape[1]
    if not 1 <= n_rf <= L:
        raise ValueError(f"{fn}: need 1 <= n_rf <= number of dictionary columns ({L}), got n_rf={n_rf}")
    D = A.mT  # [B, N, L] dictionary, columns = array responses
    Dh = D.mH.unsqueeze(1)  # [B, 1, L, N]
    tiny = torch.finfo(target.real.dtype).tiny
    sel = []
    res = target
    for _ in range(n_rf):
        psi = Dh @ (res if cov is None else cov @ res)  # [B, K, L, Ns]
        score = (psi.real ** 2 + psi.imag ** 2).sum(dim=(1, 3))  # [B, L]
        if sel:  # never pick a column twice (it has zero score up to rounding anyway)
            score = score.scatter(1, torch.stack(sel, 1), -1.0)
        k = score.argmax(dim=1)
        sel.append(k)
        idx = torch.stack(sel, 1)  # [B, i]
        RF = torch.gather(A, 1, idx[..., None].expand(-1, -1, A.shape[-1])).mT  # [B, N, i]
        RF1 = RF.unsqueeze(1)
        if cov is None:
            # Least squares F_BB = RF^+ target (pinv: robust to nearly collinear responses).
            BB = torch.linalg.pinv(RF).unsqueeze(1) @ target
        else:
            # Weighted LS (Alg. 2): (RF^H C RF)^-1 RF^H C target.
            CRF = cov @ RF1
            BB = torch.linalg.pinv(RF1.mH @ CRF) @ (CRF.mH @ target)
        res = target - RF1 @ BB
        res = res / torch.linalg.matrix_norm(res).clamp_min(tiny)[..., None, None]
    return RF, BB


def omp_precoder(Fopt: torch.Tensor, At: torch.Tensor, n_rf: int) -> Tuple[torch.Tensor, torch.Tensor]:
    """Spatially sparse hybrid precoder (El Ayach Alg. 1), wideband.

    Fopt [B, K, Nt, Ns] (or [K, Nt, Ns]), At [B, L, Nt] (or [L, Nt]): the candidate transmit array
    responses as rows (the true paths' a_t, unit norm). Returns F_RF [B, Nt, n_rf] (columns picked
    from At, entries of modulus 1/sqrt(Nt) for UPA responses), common to all subcarriers, and
    F_BB [B, K, n_rf, Ns] (least squares per subcarrier) scaled so ||F_RF F_BB[k]||_F^2 = Ns.
    The hybrid precoder is F_RF.unsqueeze(1) @ F_BB.
    """
    fn = "omp_precoder"
    _check_complex(Fopt, fn, "Fopt")
    _check_complex(At, fn, "At")
    Fopt, squeeze = _as_batched(Fopt, 4)
    At, _ = _as_batched(At, 3)
    if Fopt.dim() != 4 or At.dim() != 3 or At.shape[0] != Fopt.shape[0] or At.shape[-1] != Fopt.shape[-2]:
        raise ValueError(f"{fn}: need Fopt [B, K, Nt, Ns] and At [B, L, Nt], got {list(Fopt.shape)} and {list(At.shape)}")
    At = At.to(Fopt.dtype)
    RF, BB = _omp(Fopt, At, n_rf, None, fn)
    Ns = Fopt.shape[-1]
    norm = torch.linalg.matrix_norm(RF.unsqueeze(1) @ BB).clamp_min(torch.finfo(Fopt.real.dtype).tiny)
    BB = BB * (math.sqrt(Ns) / norm)[..., None, None]
    if squeeze:
        return RF[0], BB[0]
    return RF, BB


def mmse_combiner(H: torch.Tensor, F: torch.Tensor, snr_db: float) -> torch.Tensor:
    """Unconstrained MMSE combiner (El Ayach eq. 24), noise variance 1, E[ss^H] = I/Ns:
    W = (1/sqrt(rho)) H F (F^H H^H H F + (Ns/rho) I)^-1, so W^H = the MMSE filter for s from y."""
    rho = _rho(snr_db)
    Ns = F.shape[-1]
    HF = H @ F
    G = HF.mH @ HF + (Ns / rho) * torch.eye(Ns, dtype=HF.dtype, device=HF.device)
    return torch.linalg.solve(G, HF.mH).mH / math.sqrt(rho)


def omp_combiner(Wopt: torch.Tensor, Ar: torch.Tensor, n_rf: int, H: Optional[torch.Tensor] = None,
                 F: Optional[torch.Tensor] = None, snr_db: Optional[float] = None) -> Tuple[torch.Tensor, torch.Tensor]:
    """Hybrid combiner, wideband. With H [B, K, Nr, Nt], F [B, K, Nt, Ns] (the precoder actually
    used, e.g. the OMP hybrid one) and snr_db: El Ayach Alg. 2 (approximate the MMSE combiner in
    the metric of E[y y^H] = (rho/Ns) H F F^H H^H + I; ``Wopt`` is then ignored and may be None).
    Otherwise Alg. 1 applied to Wopt [B, K, Nr, Ns]. Ar [B, L, Nr] holds the receive responses as
    rows. Returns W_RF [B, Nr, n_rf] (common) and W_BB [B, K, n_rf, Ns] (unnormalized: the rate
    does not depend on the combiner's scale)."""
    fn = "omp_combiner"
    _check_complex(Ar, fn, "Ar")
    mmse = H is not None or F is not None
    if mmse:
        if H is None or F is None or snr_db is None:
            raise ValueError(f"{fn}: the MMSE version (Alg. 2) needs H, F and snr_db together")
        _check_complex(H, fn, "H")
        _check_complex(F, fn, "F")
        H, squeeze = _as_batched(H, 4)
        F, _ = _as_batched(F, 4)
        F = normalize_power(F.to(H.dtype))
        target = mmse_combiner(H, F, snr_db)
        rho, Ns = _rho(snr_db), F.shape[-1]
        HF = H @ F
        cov = (rho / Ns) * (HF @ HF.mH) + torch.eye(H.shape[-2], dtype=H.dtype, device=H.device)
    else:
        _check_complex(Wopt, fn, "Wopt")
        target, squeeze = _as_batched(Wopt, 4)
        cov = None
    Ar, _ = _as_batched(Ar, 3)
    if target.dim() != 4 or Ar.dim() != 3 or Ar.shape[0] != target.shape[0] or Ar.shape[-1] != target.shape[-2]:
        raise ValueError(f"{fn}: need W [B, K, Nr, Ns] (or H [B, K, Nr, Nt]) and Ar [B, L, Nr], got {list(target.shape)} and {list(Ar.shape)}")
    RF, BB = _omp(target, Ar.to(target.dtype), n_rf, cov, fn)
    if squeeze:
        return RF[0], BB[0]
    return RF, BB


def omp_rate(H: torch.Tensor, Fopt: torch.Tensor, At: torch.Tensor, Ar: torch.Tensor, n_rf: int,
             snr_db: float, reduce: str = "mean") -> torch.Tensor:
    """Spectral efficiency of the OMP hybrid precoder (Alg. 1) with the OMP MMSE combiner (Alg. 2)."""
    F_RF, F_BB = omp_precoder(Fopt, At, n_rf)
    F = F_RF.unsqueeze(-3) @ F_BB
    W_RF, W_BB = omp_combiner(None, Ar, n_rf, H=H, F=F, snr_db=snr_db)
    return spectral_efficiency(H, F, W_RF.unsqueeze(-3) @ W_BB, snr_db, reduce=reduce)
