"""Complex activations: each beamkernels backend vs the plain-PyTorch formula and the other
complex-NN libraries, forward and forward+backward, on [32, 16, 36, 144] complex64 (the thesis
CNN's first feature map at batch 32).

    python -m benchmarks.bench_activation [--device cpu|cuda] [--quick]
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as tF

import beamkernels
from benchmarks.common import Case, Provider, default_device, run_cases, write_results

BIAS = -0.1  # one value for every channel, so libraries with a scalar modReLU bias compare fairly


def plain_formulas(b: torch.Tensor):
    """What a user writes in plain PyTorch (NaN at z = 0 for modReLU/cardioid; inputs here are
    random so no exact zeros occur)."""
    return {
        "crelu": lambda x: torch.complex(tF.relu(x.real), tF.relu(x.imag)),
        "zrelu": lambda x: x * ((x.real >= 0) & (x.imag >= 0)),
        "modrelu": lambda x: tF.relu(x.abs() + b.view(1, -1, 1, 1)) * x / x.abs(),
        "cardioid": lambda x: 0.5 * (1 + torch.cos(x.angle())) * x,
    }


def other_libraries(name: str):
    """(provider name, module) for the libraries that have this activation, if installed."""
    out = []
    try:
        import torchcvnn.nn as tn

        m = {"crelu": tn.CReLU, "zrelu": tn.zReLU, "cardioid": tn.Cardioid}.get(name)
        if m is not None:
            out.append(("torchcvnn", m()))
        if name == "modrelu":
            mm = tn.modReLU()
            with torch.no_grad():
                mm.b.fill_(BIAS)
            out.append(("torchcvnn", mm))
    except Exception:
        pass
    try:
        import complextorch.nn as cn

        if name == "crelu":
            out.append(("complextorch", cn.CVSplitReLU(inplace=False)))
        elif name == "zrelu":
            out.append(("complextorch", cn.zReLU()))
        elif name == "cardioid":
            out.append(("complextorch", cn.CVCardiod()))
        elif name == "modrelu":
            out.append(("complextorch", cn.modReLU(bias=BIAS)))
    except Exception:
        pass
    try:
        from complexPyTorch.complexFunctions import complex_relu

        if name == "crelu":
            out.append(("complexPyTorch", complex_relu))
    except Exception:
        pass
    return out


def build_cases(device: torch.device, shape=(32, 16, 36, 144)) -> list[Case]:
    C = shape[1]
    x0 = torch.randn(*shape, dtype=torch.complex64, device=device)
    b = torch.full((C,), BIAS, device=device)
    g = torch.randn_like(x0)
    n = x0.numel()
    plain = plain_formulas(b)
    backends = [bk for bk in beamkernels.available_backends(device)
                if not (bk == "triton" and device.type == "cpu")]  # the interpreter is not a speed path
    cases = []
    for name in ("crelu", "zrelu", "modrelu", "cardioid"):
        def ours(x, name=name):
            return beamkernels.functional.modrelu(x, b) if name == "modrelu" else getattr(beamkernels.functional, name)(x)

        fns = {}
        for bk in backends:
            def f(x, bk=bk, ours=ours):
                with beamkernels.use_backend(bk):
                    return ours(x)
            fns[f"beamkernels[{bk}]"] = f
        fns["plain PyTorch"] = plain[name]
        for lib, mod in other_libraries(name):
            fns[lib] = mod

        def ref_out(name=name):
            return beamkernels.reference.modrelu(x0, b) if name == "modrelu" else getattr(beamkernels.reference, name)(x0)

        cases.append(Case(
            family="activation", op=name, mode="forward", shape="x".join(map(str, shape)),
            providers=[Provider(k, (lambda f=f: f(x0))) for k, f in fns.items()],
            baseline="plain PyTorch", bytes_moved=16 * n, reference=ref_out))

        xg = x0.clone().requires_grad_(True)

        def fwd_bwd(f):
            def run():
                y = f(xg)
                return torch.autograd.grad(y, xg, g)[0]
            return run

        def ref_grad(name=name):
            x = x0.clone().requires_grad_(True)
            y = beamkernels.reference.modrelu(x, b) if name == "modrelu" else getattr(beamkernels.reference, name)(x)
            return torch.autograd.grad(y, x, g)[0]

        cases.append(Case(
            family="activation", op=name, mode="forward+backward", shape="x".join(map(str, shape)),
            providers=[Provider(k, fwd_bwd(f)) for k, f in fns.items()],
            baseline="plain PyTorch", bytes_moved=40 * n, reference=ref_grad, rtol=1e-3, atol=1e-3))
    return cases


def main(argv=None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default=None)
    ap.add_argument("--quick", action="store_true", help="small shape, short timing (smoke test)")
    ap.add_argument("--min-run-time", type=float, default=0.5)
    args = ap.parse_args(argv)
    device = default_device(args.device)
    shape = (4, 16, 36, 144) if args.quick else (32, 16, 36, 144)
    print(f"activations on {device} {shape}")
    rows = run_cases(build_cases(device, shape), device, 0.1 if args.quick else args.min_run_time)
    notes = ("Bytes counted: forward reads x and writes y (16 B per complex64 element); forward+backward also "
             "reads x and grad and writes grad_x (40 B per element in all). Baseline: the plain-PyTorch formula. "
             "modReLU bias = -0.1 on every channel (the other libraries take one scalar).")
    if not args.quick:
        write_results("activation", rows, device, notes)
    return rows


if __name__ == "__main__":
    torch.manual_seed(0)  # run_all runs each family in its own process
    main()
