"""Complex linear y = x W^T + b: the formulations side by side, to pick the one that
beamkernels.functional.complex_linear uses.

- native: torch.nn.functional.linear on complex tensors (complex GEMM, what complex_linear calls)
- matmul: x @ W.T + b
- gauss: 3 real GEMMs (Re/Im split copies, then t1 = xr Wr^T, t2 = xi Wi^T, t3 = (xr+xi)(Wr+Wi)^T)
- block-real: one real GEMM [.., 2in] x [2in, 2out] on view_as_real data (the block weight is
  built every call, as it must be while W trains)
- complextorch / torchcvnn / complexPyTorch linear layers when importable.
FLOPs: 8 real FLOPs per complex multiply-add (forward), 3x that for forward+backward.

    PYTHONPATH=. python benchmarks/bench_linear.py [--device cpu|cuda] [--quick]
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as tF

import beamkernels.functional as F
from benchmarks.common import Case, Provider, default_device, run_cases, write_results

# (batch, in, out): the zoo's classifier heads (flattened conv features) and small layers.
SIZES = [(32, 4608, 1024), (32, 9216, 1440), (32, 1024, 256), (32, 256, 64), (256, 1024, 10)]


def native(x, w, b):
    return tF.linear(x, w, b)


def matmul(x, w, b):
    return torch.matmul(x, w.t()) + b


def gauss(x, w, b):
    xr, xi, wr, wi = x.real, x.imag, w.real, w.imag
    t1 = xr @ wr.t()
    t2 = xi @ wi.t()
    t3 = (xr + xi) @ (wr + wi).t()
    return torch.complex(t1 - t2 + b.real, t3 - t1 - t2 + b.imag)


def block_real(x, w, b):
    n_out, n_in = w.shape
    wr, wi = w.real, w.imag
    # Wb[2i + s, 2o + t]: s = 0 / 1 reads Re / Im of x_i, t = 0 / 1 writes Re / Im of y_o.
    wb = torch.stack((torch.stack((wr, wi), -1), torch.stack((-wi, wr), -1)), 1)  # [out, s, in, t]
    wb = wb.permute(2, 1, 0, 3).reshape(2 * n_in, 2 * n_out)
    y = torch.view_as_real(x).reshape(*x.shape[:-1], 2 * n_in) @ wb
    return torch.view_as_complex(y.view(*x.shape[:-1], n_out, 2)) + b


def _library_layers(n_in, n_out, w, b):
    out = {}
    try:
        from complextorch.nn.modules.linear import Linear as CtLinear

        m = CtLinear(n_in, n_out)
        with torch.no_grad():
            m.linear.weight.copy_(w)  # complextorch 2.x: a complex nn.Linear inside
            m.linear.bias.copy_(b)
        out["complextorch"] = m
    except Exception:
        pass
    try:
        from complexPyTorch.complexLayers import ComplexLinear as CptLinear

        m2 = CptLinear(n_in, n_out)  # two real nn.Linear (fc_r, fc_i), 4 GEMMs
        with torch.no_grad():
            m2.fc_r.weight.copy_(w.real)
            m2.fc_i.weight.copy_(w.imag)
            # y = fc_r(xr) - fc_i(xi) + i (fc_r(xi) + fc_i(xr)): biases br - bi and br + bi.
            m2.fc_r.bias.copy_((b.real + b.imag) / 2)
            m2.fc_i.bias.copy_((b.imag - b.real) / 2)
        out["complexPyTorch"] = m2
    except Exception:
        pass
    return out


def _cases(device, batch, n_in, n_out):
    x = torch.randn(batch, n_in, dtype=torch.complex64, device=device)
    w = torch.randn(n_out, n_in, dtype=torch.complex64, device=device) / n_in ** 0.5
    b = torch.randn(n_out, dtype=torch.complex64, device=device)
    y_ref = (x.to(torch.complex128) @ w.to(torch.complex128).t() + b).to(torch.complex64)
    fns = {
        "beamkernels[auto]": F.complex_linear, "native": native, "matmul": matmul, "gauss": gauss, "block-real": block_real,
    }
    label = f"[{batch}, {n_in}] -> {n_out}"
    flops = 8.0 * batch * n_in * n_out
    fwd = [Provider(name, (lambda f=f: f(x, w, b))) for name, f in fns.items()]
    for name, m in _library_layers(n_in, n_out, w, b).items():
        fwd.append(Provider(name, (lambda m=m: m(x))))
    xg, wg, bg = (t.clone().requires_grad_(True) for t in (x, w, b))
    g = torch.randn_like(y_ref)

    def fb(f):
        y = f(xg, wg, bg)
        return torch.autograd.grad(y, (xg, wg, bg), g)

    both = [Provider(name, (lambda f=f: fb(f))) for name, f in fns.items()]
    grads_ref = fb(native)
    return [
        Case("linear", "complex_linear", "forward", label, fwd, baseline="native", flops=flops,
             reference=lambda: y_ref, rtol=1e-3, atol=1e-3),
        Case("linear", "complex_linear", "forward+backward", label, both, baseline="native", flops=3 * flops,
             reference=lambda: grads_ref, rtol=1e-3, atol=1e-3),
    ]


def main(argv=None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default=None)
    ap.add_argument("--quick", action="store_true", help="three sizes, short timing")
    ap.add_argument("--min-run-time", type=float, default=None)
    args = ap.parse_args(argv)
    device = default_device(args.device)
    torch.manual_seed(0)
    mrt = args.min_run_time if args.min_run_time is not None else (0.2 if args.quick else 1.0)
    cases = []
    for size in (SIZES[:1] + SIZES[3:] if args.quick else SIZES):
        cases += _cases(device, *size)
    rows = run_cases(cases, device, min_run_time=mrt)
    if not args.quick:
        print(write_results("linear", rows, device, notes="FLOPs: 8 per complex multiply-add; fwd+bwd counts 3x."))
    return rows


if __name__ == "__main__":
    main()
