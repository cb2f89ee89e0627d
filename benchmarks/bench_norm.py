"""Whitening batch-norm benchmark: beamkernels backends vs the plain-PyTorch formulation (the
reference, the baseline), NaiveComplexBatchNorm2d (two real BNs, for information) and the
whitening BNs of complextorch / torchcvnn / complexPyTorch / cplxmodule when importable.

Shape: [32, 16, 36, 144] complex64 (layer L1's output of the thesis CNN), training mode.
Compulsory bytes (x is 21.2 MB): forward = read x twice (statistics, then apply) + write y once
= 3 |x|; forward+backward = forward + read g and x (reduction) + read g, x and write grad_x
= 8 |x|. The fraction of the machine's copy bandwidth is computed on those bytes.

    PYTHONPATH=. python benchmarks/bench_norm.py [--device cpu] [--quick]
"""

from __future__ import annotations

import argparse

import torch

import beamkernels
import beamkernels.functional as F
from beamkernels import reference as ref
from benchmarks.common import Case, Provider, default_device, run_cases, write_results

SHAPE = (32, 16, 36, 144)


def _bk_backends(device: torch.device) -> list[str]:
    out = []
    for b in ("cpu", "cuda", "triton"):
        if b == "triton" and device.type != "cuda":
            continue  # the interpreter is meaningless for speed
        if b in beamkernels.available_backends(device):
            out.append(b)
    return out


def _third_party(c: int, device: torch.device) -> dict[str, torch.nn.Module | object]:
    """Whitening BN layers of other libraries, in training mode, when importable."""
    mods = {}
    try:
        import complextorch.nn as ctn
        mods["complextorch.BatchNorm2d"] = ctn.BatchNorm2d(c).to(device)
    except Exception:
        pass
    try:
        import torchcvnn.nn as tcn
        mods["torchcvnn.BatchNorm2d"] = tcn.BatchNorm2d(c, device=device)
    except Exception:
        pass
    try:
        from complexPyTorch.complexLayers import ComplexBatchNorm2d
        mods["complexPyTorch.ComplexBatchNorm2d"] = ComplexBatchNorm2d(c).to(device)
    except Exception:
        pass
    try:
        import cplxmodule
        import cplxmodule.nn as cm
        bn = cm.CplxBatchNorm2d(c).to(device)
        mods["cplxmodule.CplxBatchNorm2d"] = lambda x, bn=bn: bn(cplxmodule.Cplx(x.real, x.imag))
    except Exception:
        pass
    return mods


def build_cases(device: torch.device, quick: bool) -> list[Case]:
    shape = (8, 16, 36, 144) if quick else SHAPE
    c = shape[1]
    x = torch.randn(*shape, dtype=torch.complex64, device=device)
    x = torch.complex(1.5 * x.real + 0.3, 0.4 * x.real + 0.5 * x.imag - 0.7)  # correlated, offset
    g = torch.randn_like(x)
    w = torch.tensor([[0.9, 0.2, 0.6]] * c, device=device)
    b = torch.randn(c, 2, device=device)
    nbytes = x.numel() * x.element_size()
    sshape = "x".join(map(str, shape))

    def bk(backend):
        rm, rv = torch.zeros(c, 2, device=device), torch.ones(c, 3, device=device)

        def f(xx, ww, bb):
            with beamkernels.use_backend(backend):
                return F.complex_batch_norm(xx, rm, rv, ww, bb, True, 0.1, 1e-5)
        return f

    def reference(xx, ww, bb):
        rm, rv = torch.zeros(c, 2, device=device), torch.ones(c, 3, device=device)
        return ref.complex_batch_norm(xx, rm, rv, ww, bb, True, 0.1, 1e-5)

    naive = beamkernels.nn.NaiveComplexBatchNorm2d(c, device=device)
    fns = {f"beamkernels[{be}]": bk(be) for be in _bk_backends(device)}
    fns["plain-pytorch (reference)"] = reference

    def fwd_provider(name, f):
        return Provider(name, lambda: f(x, w, b))

    def fwdbwd_provider(name, f):
        xg, wg, bg = (t.detach().clone().requires_grad_(True) for t in (x, w, b))

        def run():
            f(xg, wg, bg).backward(g)

        def check():
            xg.grad = None
            f(xg, wg, bg).backward(g)
            return xg.grad
        return Provider(name, run, check)

    def ref_grad():
        xg, wg, bg = (t.detach().clone().requires_grad_(True) for t in (x, w, b))
        reference(xg, wg, bg).backward(g)
        return xg.grad

    base = "plain-pytorch (reference)"
    cases = [
        Case("normalization", "complex_batch_norm", "forward", sshape,
             [fwd_provider(n, f) for n, f in fns.items()], base, bytes_moved=3 * nbytes,
             reference=lambda: reference(x, w, b), rtol=1e-3, atol=1e-3),
        Case("normalization", "complex_batch_norm", "forward+backward", sshape,
             [fwdbwd_provider(n, f) for n, f in fns.items()], base, bytes_moved=8 * nbytes,
             reference=ref_grad, rtol=1e-3, atol=1e-3),
    ]
    # For information (not checked against ours: other parametrisations / not whitening).
    info = {"NaiveComplexBatchNorm2d (2 real BNs)": lambda xx, ww, bb: naive(xx), base: reference}
    for name, m in _third_party(c, device).items():
        info[name] = (lambda xx, ww, bb, m=m: m(xx))
    info_fwd, info_fb = [], []
    for name, f in info.items():
        info_fwd.append(fwd_provider(name, f))
        xg = x.detach().clone().requires_grad_(True)

        def run(f=f, xg=xg):
            out = f(xg, w, b)
            if not isinstance(out, torch.Tensor):  # cplxmodule's Cplx
                out = torch.complex(out.real, out.imag)
            out.backward(g)
        info_fb.append(Provider(name, run))
    cases += [
        Case("normalization", "complex_batch_norm (others)", "forward", sshape, info_fwd, base, bytes_moved=3 * nbytes),
        Case("normalization", "complex_batch_norm (others)", "forward+backward", sshape, info_fb, base,
             bytes_moved=8 * nbytes),
    ]
    return cases


def main(argv=None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default=None)
    ap.add_argument("--quick", action="store_true", help="smaller batch (8), shorter timing")
    ap.add_argument("--min-run-time", type=float, default=None)
    args = ap.parse_args(argv)
    device = default_device(args.device)
    mrt = args.min_run_time if args.min_run_time is not None else (0.2 if args.quick else 1.0)
    rows = run_cases(build_cases(device, args.quick), device, min_run_time=mrt)
    notes = ("Training mode. Compulsory bytes: forward = 3|x| (read x for the statistics, read x and "
             "write y for the apply); forward+backward = 8|x|. '(others)' rows are for information: "
             "outputs not compared (different parametrisations, or no whitening).")
    if not args.quick:
        print(write_results("norm", rows, device, notes))
    return rows


if __name__ == "__main__":
    torch.manual_seed(0)  # run_all runs each family in its own process
    main()
