"""Max-pool by magnitude: beamkernels backends vs the plain-PyTorch formulation (abs +
max_pool2d with indices + gather) and the other complex-NN libraries when importable.

Compulsory bytes: forward reads x and writes out (complex); forward+backward also reads
grad_out and writes grad_x. The indices (int64) are extra traffic, counted against us.

    PYTHONPATH=. python benchmarks/bench_pool.py [--device cpu|cuda] [--quick]
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as tF

import beamkernels
import beamkernels.functional as F
from beamkernels import reference as ref
from benchmarks.common import Case, Provider, default_device, run_cases, write_results

# (shape, kernel, stride, padding): the zoo's 2x2 pools after L1..L3, and a 3x3/2 pad-1 pool.
CASES = [
    ((32, 16, 36, 144), 2, 2, 0),
    ((32, 32, 18, 72), 2, 2, 0),
    ((32, 64, 9, 36), 2, 2, 0),
    ((32, 16, 36, 144), 3, 2, 1),
]


def plain_pytorch(x, k, s, p):
    _, idx = tF.max_pool2d(x.abs(), k, s, p, return_indices=True)
    return x.flatten(2).gather(2, idx.flatten(2)).view(idx.shape)


def _library_providers(k, s, p):
    """name -> callable(x) for the other libraries that are installed."""
    out = {}
    try:
        from complextorch.nn.modules.pooling import MagMaxPool2d

        m = MagMaxPool2d(k, s, p)
        out["complextorch"] = m
    except Exception:
        pass
    try:
        import torchcvnn.nn as cvnn

        m2 = cvnn.MaxPool2d(k, s, p)
        out["torchcvnn"] = m2
    except Exception:
        pass
    try:
        from complexPyTorch.complexFunctions import complex_max_pool2d as cpt

        out["complexPyTorch"] = lambda x: cpt(x, k, s, p)  # rebuilds from |z| and phase (inexact)
    except Exception:
        pass
    return out


def _backend_fn(backend, k, s, p):
    def f(x):
        with beamkernels.use_backend(backend):
            return F.complex_max_pool2d(x, k, s, p)
    return f


def _case_pair(device, shape, k, s, p, backends):
    """The forward and forward+backward Cases of one shape (inputs bound here, not late)."""
    x = torch.randn(*shape, dtype=torch.complex64, device=device)
    y_ref = ref.complex_max_pool2d(x, k, s, p)
    n_in, n_out = x.numel(), y_ref.numel()
    fns = {f"beamkernels[{b}]": _backend_fn(b, k, s, p) for b in backends}
    fns["plain-pytorch"] = lambda t: plain_pytorch(t, k, s, p)
    fns.update(_library_providers(k, s, p))
    label = f"{list(shape)} k{k} s{s} p{p}"
    fwd = [Provider(name, (lambda f=f: f(x))) for name, f in fns.items()]
    xg = x.clone().requires_grad_(True)
    g = torch.randn_like(y_ref)
    (gx_ref,) = torch.autograd.grad(ref.complex_max_pool2d(xg, k, s, p), xg, g)

    def fb(f):
        xg.grad = None
        f(xg).backward(g)
        return xg.grad

    both = [Provider(name, (lambda f=f: fb(f))) for name, f in fns.items()]
    return [
        Case("pool", "complex_max_pool2d", "forward", label, fwd, baseline="plain-pytorch",
             bytes_moved=8 * (n_in + n_out), reference=lambda: y_ref),
        Case("pool", "complex_max_pool2d", "forward+backward", label, both, baseline="plain-pytorch",
             bytes_moved=16 * (n_in + n_out), reference=lambda: gx_ref),
    ]


def build_cases(device: torch.device, quick: bool) -> list[Case]:
    backends = [b for b in beamkernels.available_backends(device) if not (b == "triton" and device.type == "cpu")]
    cases = []
    for shape, k, s, p in CASES[:2] if quick else CASES:
        cases += _case_pair(device, shape, k, s, p, backends)
    return cases


def main(argv=None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default=None)
    ap.add_argument("--quick", action="store_true", help="two shapes, short timing")
    ap.add_argument("--min-run-time", type=float, default=None)
    args = ap.parse_args(argv)
    device = default_device(args.device)
    torch.manual_seed(0)
    mrt = args.min_run_time if args.min_run_time is not None else (0.2 if args.quick else 1.0)
    rows = run_cases(build_cases(device, args.quick), device, min_run_time=mrt)
    if not args.quick:
        print(write_results("pool", rows, device,
                            notes="Compulsory bytes: fwd = read x + write out; fwd+bwd adds read grad_out + write grad_x. "
                                  "complexPyTorch rebuilds the output from |z| and phase (not the original element)."))
    return rows


if __name__ == "__main__":
    main()
