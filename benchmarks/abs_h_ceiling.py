"""How much spectral efficiency can a model fed only |H| reach? (the thesis's real baseline)

|H| = |conj(H)|, and conj(H) is an equally likely channel of the clustered model (conjugation
maps the angles (az, el) -> (-az, pi - el), alpha -> conj(alpha), and cluster tap c -> K - c,
all of which leave the distribution unchanged when Nc = K and angles are uniform). A model that
sees only |H| must output the same F for H and conj(H), so its expected SE is at most

    E_H [ max_F ( R(H, F) + R(conj H, F) ) / 2 ]     (per subcarrier, W = the best combiner)

We estimate that ceiling by gradient ascent on F (from Fopt(H) and from Fopt(conj H), keeping the
better), and also report R(H, conj(Fopt(H))): the SE when the model returns the right precoder
for the other channel of the pair, and the SE of a random precoder (the floor). (Other channels share |H| too, e.g. any per-entry phase
pattern, so the true ceiling is lower still.)

Run: PYTHONPATH=. python -m benchmarks.abs_h_ceiling [--samples 64] [--snr-db 10]
"""

from __future__ import annotations

import argparse
import json
import os

import torch


def rate_best_w(H: torch.Tensor, F: torch.Tensor, snr_db: float) -> torch.Tensor:
    """R with the best combiner for F: log2 det(I + rho/Ns F^H H^H H F), per [..., K]."""
    Ns = F.shape[-1]
    F = F * torch.rsqrt(F.abs().square().sum(dim=(-2, -1), keepdim=True) / Ns)
    rho = 10 ** (snr_db / 10)
    HF = H @ F
    G = torch.eye(Ns, dtype=H.dtype) + (rho / Ns) * HF.mH @ HF
    return torch.linalg.slogdet(G)[1] / torch.log(torch.tensor(2.0))


def pair_ceiling(H: torch.Tensor, F0: torch.Tensor, snr_db: float, iters: int) -> torch.Tensor:
    F = F0.clone().requires_grad_()
    opt = torch.optim.Adam([F], lr=0.02)
    for _ in range(iters):
        loss = -(rate_best_w(H, F, snr_db) + rate_best_w(H.conj(), F, snr_db)).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        return (rate_best_w(H, F, snr_db) + rate_best_w(H.conj(), F, snr_db)) / 2


def main(argv: list[str] | None = None) -> int:
    from beamkernels.data import generate_channels

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--samples", type=int, default=64)
    p.add_argument("--snr-db", type=float, default=10.0)
    p.add_argument("--iters", type=int, default=300)
    p.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "training"))
    a = p.parse_args(argv)
    torch.manual_seed(0)
    b = generate_channels(a.samples, seed=12345, dtype=torch.complex128)
    H, Fopt = b.H, b.Fopt
    bound = rate_best_w(H, Fopt, a.snr_db)
    swapped = rate_best_w(H, Fopt.conj(), a.snr_db)  # the right answer for conj(H), used on H
    c1 = pair_ceiling(H, Fopt, a.snr_db, a.iters)
    c2 = pair_ceiling(H, Fopt.conj(), a.snr_db, a.iters)
    ceiling = torch.maximum(c1, c2)
    # Floor: an isotropic random precoder (what a model that learned nothing from H gets).
    rand = torch.randn(Fopt.shape, dtype=Fopt.dtype)
    random_se = rate_best_w(H, rand, a.snr_db)
    res = {
        "snr_db": a.snr_db, "samples": a.samples, "setting": "Yu's default (Nt=144, Nr=36, Ns=2, K=5)",
        "svd_bound": float(bound.mean()),
        "conj_precoder_se": float(swapped.mean()),
        "abs_h_ceiling_se": float(ceiling.mean()),
        "random_precoder_se": float(random_se.mean()),
        "conj_precoder_fraction": float(swapped.mean() / bound.mean()),
        "abs_h_ceiling_fraction": float(ceiling.mean() / bound.mean()),
        "random_precoder_fraction": float(random_se.mean() / bound.mean()),
    }
    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, "abs_h_ceiling.json"), "w") as f:
        json.dump(res, f, indent=1)
    print(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
