"""Train every model of the zoo briefly and compare them against the SVD bound and OMP.

Each model is trained with the same CLI as ``beamkernels train`` (generator data, Yu's setting:
Nt = 144, Nr = 36, Ns = 2, K = 5) for a small budget, then evaluated on the same held-out
channels. Prints a table of SE at --snr-db (absolute, as a fraction of the SVD bound, and vs OMP
with N_RF = Ns) and writes a comparison plot next to the per-model reports.

Run (small budget, CPU, a few minutes):
    PYTHONPATH=. python python/train_and_compare.py --steps 20 --batch-size 8 --out runs/compare
Bigger budgets give better models; see the README for measured numbers.
"""

from __future__ import annotations

import argparse
import json
import os

from beamkernels.__main__ import main as cli
from beamkernels.models import list_models

# Small widths keep the CPU run short; the defaults are the documented architectures.
SMALL = {
    "thesis-real-encoder": ["-c", "width=8"],
    "thesis-complex-cnn": ["-c", "width=8", "-c", "hidden=256"],
    "complex-unet": ["-c", "width=4"],
    "complex-resnet": ["-c", "width=8", "-c", "hidden=256"],
    "complex-unfolded": ["-c", "width=8", "-c", "hidden=128"],
}
# Models whose W is always the matched combiner (no W head): --combiner is not passed to them.
MATCHED_ONLY = {"thesis-real-encoder", "complex-unfolded"}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default=",".join(list_models()))
    p.add_argument("--steps", type=int, default=20, help="training steps per model")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--loss", default="rate")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--snr-db", type=float, default=10.0)
    p.add_argument("--val-samples", type=int, default=32)
    p.add_argument("--time-budget-min", type=float, default=0.0, help="per model (0 = no limit)")
    p.add_argument("--full-size", action="store_true", help="default widths instead of the small ones")
    p.add_argument("--combiner", default="head", choices=["head", "matched"],
                   help="complex models: W from a head, or matched to H and the predicted F (thesis-real-encoder and complex-unfolded are always matched)")
    p.add_argument("--out", default="runs/compare")
    a = p.parse_args(argv)

    results = {}
    for name in a.models.split(","):
        out = os.path.join(a.out, name)
        args = ["train", "--model", name, "--epochs", str(a.epochs),
                "--steps-per-epoch", str(max(1, a.steps // a.epochs)), "--batch-size", str(a.batch_size),
                "--loss", a.loss, "--lr", str(a.lr), "--snr-db", str(a.snr_db), "--val-samples", str(a.val_samples),
                "--time-budget-min", str(a.time_budget_min), "--out", out, "--no-progress"]
        if not a.full_size:
            args += SMALL.get(name, [])
        if name not in MATCHED_ONLY:
            args += ["-c", f"combiner={a.combiner}"]
        print(f"\n=== {name}")
        cli(args)
        with open(os.path.join(out, "report.json")) as f:
            results[name] = json.load(f)

    print(f"\nSE at {a.snr_db:g} dB (bits/s/Hz), same held-out channels for every model:")
    print(f"{'model':22s} {'params':>10s} {'steps':>6s} {'SE':>7s} {'/ bound':>8s} {'/ OMP':>7s}")
    for name, r in results.items():
        h = r["headline"]
        print(f"{name:22s} {r['info']['parameters']:>10,} {r['info']['steps']:>6d} {h['model']:7.2f} "
              f"{100 * h['model_over_bound']:7.1f}% {100 * h.get('model_over_omp', float('nan')):6.1f}%")
    h = next(iter(results.values()))["headline"]
    print(f"{'SVD bound':22s} {'':>10s} {'':>6s} {h['svd_bound']:7.2f}")
    if "omp" in h:
        print(f"{'OMP (N_RF = Ns)':22s} {'':>10s} {'':>6s} {h['omp']:7.2f} {100 * h['omp_over_bound']:7.1f}%")
    _plot(results, os.path.join(a.out, "comparison.png"))
    print(f"\nplot: {os.path.join(a.out, 'comparison.png')}")
    return 0


def _plot(results: dict, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4.2))
    rows = next(iter(results.values()))["se_vs_snr"]["rows"]
    snr = [r["snr_db"] for r in rows]
    ax.plot(snr, [r["svd_bound"] for r in rows], "k--", label="SVD bound")
    if "omp" in rows[0]:
        ax.plot(snr, [r["omp"] for r in rows], "ks-", label="OMP (N_RF = Ns)")
    for name, r in results.items():
        ax.plot(snr, [x["model"] for x in r["se_vs_snr"]["rows"]], "o-", label=name)
    ax.set_xlabel("SNR (dB)")
    ax.set_ylabel("spectral efficiency (bits/s/Hz)")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)


if __name__ == "__main__":
    raise SystemExit(main())
