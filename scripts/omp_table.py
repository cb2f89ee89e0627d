"""Measure the SVD bound and the OMP hybrid baseline (El Ayach Alg. 1 precoder + Alg. 2 MMSE
combiner, one common analog matrix for all subcarriers) on generated channels; prints the
markdown table of the README's data section.

    PYTHONPATH=$PWD python scripts/omp_table.py --n 500 --seed 0
"""

import argparse
import time

import torch

from beamkernels.data import ChannelConfig, generate_channels
from beamkernels.metrics import omp_rate, svd_bound


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--n", type=int, default=500)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--snrs", type=float, nargs="+", default=[-10.0, 0.0, 10.0])
    p.add_argument("--n-rf", type=int, nargs="+", default=[2, 4])
    p.add_argument("--threads", type=int, default=1, help="intra-op threads (1 is fastest on a busy machine)")
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    cfg = ChannelConfig()
    t = time.perf_counter()
    b = generate_channels(a.n, cfg, seed=a.seed, dtype=torch.complex128)
    gen_s = time.perf_counter() - t
    head = "| SNR (dB) | SVD bound | " + " | ".join(f"OMP N_RF={r} (fraction)" for r in a.n_rf) + " |"
    print(f"{a.n} channels, default setting (Nt={cfg.Nt}, Nr={cfg.Nr}, Ns={cfg.Ns}, K={cfg.K}, Nc={cfg.Nc}, "
          f"Nray={cfg.Nray}), seed {a.seed}; generated in {gen_s:.1f} s; bits/s/Hz, mean over samples and subcarriers\n")
    print(head)
    print("|" + "---|" * (2 + len(a.n_rf)))
    for s in a.snrs:
        bound = svd_bound(b.H, cfg.Ns, s).item()
        cells = []
        for r in a.n_rf:
            o = omp_rate(b.H, b.Fopt, b.At, b.Ar, r, s).item()
            cells.append(f"{o:.2f} ({o / bound:.3f})")
        print(f"| {s:g} | {bound:.2f} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
