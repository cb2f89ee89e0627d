"""Benchmark of the fused complex conv2d on the thesis CNN's four layers (shared/performance.md).

Providers side by side, per layer, activation (modReLU or none) and mode (forward,
forward+backward): each beamkernels backend that runs on the device (not the Triton interpreter),
torch's F.conv2d on complex64 (+ plain-PyTorch modReLU: the reference, the baseline), the
thesis's 4 real convs (out_r = conv(xr, Wr) - conv(xi, Wi), out_i = conv(xi, Wr) + conv(xr, Wi)),
Gauss's 3 real convs, and complexPyTorch / complextorch convs when importable (activation none
only: their modReLU definitions differ). GFLOP/s counts 8 real FLOPs per complex MAC (x3 for
forward+backward); '% of floor' is each kernel's fraction of its roofline floor (benchmarks/common.py:
FLOPs over a measured large-GEMM rate, compulsory bytes over a same-size copy's bandwidth).

    python -m benchmarks.bench_conv [--device cpu|cuda] [--quick] [--min-run-time 0.5] [--steady-heap]

CPU times include page faults unless --steady-heap (see benchmarks/bench_models.py): a forward
alone allocates y and z (2 x 21 MB on L1) that glibc maps fresh, or trims and regrows, per call.
"""

from __future__ import annotations

import argparse
import contextlib

import torch
import torch.nn.functional as TF

import beamkernels
from beamkernels import conv_tf32
from beamkernels import functional as F
from beamkernels import reference as ref
from benchmarks.common import STEADY_HEAP_HELP, Case, Provider, default_device, run_cases, use_steady_heap, write_results

# (name, C_in, C_out, H, W): 3x3, padding 1, stride 1.
LAYERS = [("L1", 5, 16, 36, 144), ("L2", 16, 32, 18, 72), ("L3", 32, 64, 9, 36), ("L4", 64, 128, 4, 18)]


def _modrelu(z, b):
    return ref.modrelu(z, b)


def four_real_convs(x, w, b):
    """The thesis's complex conv: two real convs on each part (4 real convs)."""
    xr, xi, wr, wi = x.real, x.imag, w.real, w.imag
    out_r = TF.conv2d(xr, wr, b.real, padding=1) - TF.conv2d(xi, wi, None, padding=1)
    out_i = TF.conv2d(xi, wr, b.imag, padding=1) + TF.conv2d(xr, wi, None, padding=1)
    return torch.complex(out_r, out_i)


def gauss_convs(x, w, b):
    """Gauss's 3 real convs: k1 = W_r * (x_r + x_i), k2 = x_r * (W_i - W_r), k3 = x_i * (W_r + W_i);
    Re = k1 - k3, Im = k1 + k2."""
    xr, xi, wr, wi = x.real, x.imag, w.real, w.imag
    k1 = TF.conv2d(xr + xi, wr, None, padding=1)
    k2 = TF.conv2d(xr, wi - wr, None, padding=1)
    k3 = TF.conv2d(xi, wr + wi, None, padding=1)
    return torch.complex(k1 - k3 + b.real.view(1, -1, 1, 1), k1 + k2 + b.imag.view(1, -1, 1, 1))


def _third_party(cin, cout, w, b, device):
    """(name, module) of the other libraries' complex convs, loaded with the same weights."""
    out = []
    try:
        from complexPyTorch.complexLayers import ComplexConv2d as CPConv

        m = CPConv(cin, cout, 3, padding=1).to(device)
        with torch.no_grad():  # out_r = conv_r(xr) - conv_i(xi): bias = (b_r - b_i) + i (b_r + b_i)
            m.conv_r.weight.copy_(w.real)
            m.conv_i.weight.copy_(w.imag)
            m.conv_r.bias.copy_((b.real + b.imag) / 2)
            m.conv_i.bias.copy_((b.imag - b.real) / 2)
        out.append(("complexPyTorch", m))
    except Exception:
        pass
    try:
        import complextorch.nn as ctnn

        m = ctnn.Conv2d(cin, cout, 3, padding=1).to(device)
        with torch.no_grad():
            m.conv.weight.copy_(w)
            m.conv.bias.copy_(b)
        out.append(("complextorch", m))
    except Exception:
        pass
    return out


def _backends(device):
    names = []
    for b in beamkernels.available_backends(device):
        if b == "reference":
            continue
        if b == "triton" and device.type != "cuda":
            continue  # the interpreter is meaningless for speed
        names.append(b)
    return names


def build_cases(device, batch, layers, activations, dtype=torch.complex64):
    cases = []
    for name, cin, cout, h, w_ in layers:
        x = torch.randn(batch, cin, h, w_, dtype=dtype, device=device)
        w = torch.randn(cout, cin, 3, 3, dtype=dtype, device=device) / (3 * cin ** 0.5)
        b = torch.randn(cout, dtype=dtype, device=device) * 0.1
        ab = torch.linspace(-0.5, 0.2, cout, device=device, dtype=x.real.dtype)
        g = torch.randn(batch, cout, h, w_, dtype=dtype, device=device)
        flops = 8.0 * batch * cout * h * w_ * cin * 9
        # Compulsory bytes (8 B per complex64, 16 per complex128): each tensor once. Forward: x, w, b
        # read, y written; forward+backward adds dL/dy read, dL/dW and dL/db written (and dL/dx when asked).
        e = x.element_size()
        xb, wb, bb, yb = e * x.numel(), e * w.numel(), e * b.numel(), e * g.numel()
        fwd_bytes = xb + wb + bb + yb
        # On a GPU complex64 convs default to TF32 (torch's and ours): ~1e-3 relative per product.
        tol = 1e-2 if device.type == "cuda" and dtype == torch.complex64 else 1e-3
        shape = f"{name} [{batch},{cin},{h},{w_}] {cin}->{cout}"
        for act in activations:
            fns = {}
            for bk in _backends(device):
                def f(x, w, b, bk=bk, act=act, ab=ab):
                    with beamkernels.use_backend(bk):
                        return F.complex_conv2d(x, w, b, padding=1, activation=act,
                                                activation_bias=ab if act == "modrelu" else None)
                fns[f"beamkernels[{bk}]"] = f
                if bk == "cuda":  # the exact-fp32 CUDA-core path next to the default TF32 tensor cores
                    def f32(x, w, b, f=f):
                        with conv_tf32(False):
                            return f(x, w, b)
                    fns["beamkernels[cuda, exact fp32]"] = f32
            post = (lambda z, ab=ab: _modrelu(z, ab)) if act == "modrelu" else (lambda z: z)
            fns["torch-complex"] = lambda x, w, b, post=post: post(TF.conv2d(x, w, b, padding=1))
            fns["4-real-convs"] = lambda x, w, b, post=post: post(four_real_convs(x, w, b))
            fns["gauss-3-convs"] = lambda x, w, b, post=post: post(gauss_convs(x, w, b))
            if act is None and dtype == torch.complex64:  # the other libraries' layers are complex64
                for lib, m in _third_party(cin, cout, w, b, device):
                    fns[lib] = lambda x, w, b, m=m: m(x)
            expected = lambda post=post, x=x, w=w, b=b: post(TF.conv2d(x, w, b, padding=1))  # noqa: E731
            op = f"conv2d+{act or 'none'}"
            # forward
            cases.append(Case("conv", op, "forward", shape, [
                Provider(n, (lambda f=f, x=x, w=w, b=b: _no_grad(f, x, w, b))) for n, f in fns.items()],
                baseline="torch-complex", flops=flops, bytes_moved=fwd_bytes, reference=expected, rtol=tol, atol=tol))
            # forward + backward: grads of weight and bias, and of x except for L1, the network's
            # input layer (x = the channel H never needs a gradient); L1 is also measured with dL/dx.
            fb_modes = [("forward+backward", name != "L1")]
            if name == "L1":
                fb_modes.append(("forward+backward (with dx)", True))
            for mode, x_grad in fb_modes:
                provs = []
                for n, f in fns.items():
                    xs = x.clone().requires_grad_(x_grad)
                    ws, bs = (t.clone().requires_grad_(True) for t in (w, b))
                    mod = (next((m for lib, m in _third_party(cin, cout, w, b, device) if lib == n), None)
                           if act is None and dtype == torch.complex64 else None)

                    def fb(f=f, xs=xs, ws=ws, bs=bs, mod=mod, g=g, exact="exact fp32" in n):
                        with conv_tf32(False) if exact else contextlib.nullcontext():  # the backward too
                            y = mod(xs) if mod is not None else f(xs, ws, bs)
                            y.backward(g)
                        return y
                    provs.append(Provider(n, fb, check=lambda f=f, x=x, w=w, b=b: _no_grad(f, x, w, b)))
                # FLOPs: forward + dL/dW (+ dL/dx)
                cases.append(Case("conv", op, mode, shape, provs, baseline="torch-complex",
                                  flops=(3 if x_grad else 2) * flops,
                                  bytes_moved=fwd_bytes + yb + wb + bb + (xb if x_grad else 0),
                                  reference=expected, rtol=tol, atol=tol))
    return cases


def _no_grad(f, *args):
    with torch.no_grad():
        return f(*args)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default=None)
    ap.add_argument("--quick", action="store_true", help="batch 4, layers L1 and L4, modReLU only")
    ap.add_argument("--min-run-time", type=float, default=0.5)
    ap.add_argument("--layers", default="L1,L2,L3,L4", help="comma-separated subset of L1..L4")
    ap.add_argument("--activations", default="modrelu,none", help="comma-separated subset of modrelu,none")
    ap.add_argument("--batch", type=int, default=None,
                    help="default: 256 on GPU, 32 on CPU; another batch writes conv-batch<N>[...]-<device>.*")
    ap.add_argument("--steady-heap", action="store_true", help=STEADY_HEAP_HELP)
    ap.add_argument("--dtype", default="complex64", choices=["complex64", "complex128"],
                    help="complex128 writes conv-complex128[-steady-heap]-<device>.* (no third-party providers)")
    args = ap.parse_args(argv)
    if args.steady_heap:
        use_steady_heap(ap)
    device = default_device(args.device)
    batch = args.batch or (256 if device.type == "cuda" else 32)
    wanted = args.layers.split(",")
    layers = [layer for layer in LAYERS if layer[0] in wanted]
    activations = [None if a == "none" else a for a in args.activations.split(",")]
    if args.quick:
        batch, layers, activations = 4, [LAYERS[0], LAYERS[3]], ["modrelu"]
    torch.manual_seed(0)
    dtype = getattr(torch, args.dtype)
    cases = build_cases(device, batch, layers, activations, dtype)
    rows = run_cases(cases, device, min_run_time=args.min_run_time)
    notes = (f"batch {batch}; 3x3 convs, padding 1; {args.dtype}. GFLOP/s: 8 real FLOPs per complex MAC "
             f"(forward+backward counted as 3x the forward, 2x without dL/dx). Baseline: torch.nn.functional.conv2d on {args.dtype} "
             "(+ modReLU in plain PyTorch).")
    if dtype == torch.complex128:
        notes += " '% of floor' uses the float32 GEMM rate: read it as relative only."
    if args.steady_heap:
        notes += (" Run after beamkernels.train.steady_heap() (glibc mallopt: mmap threshold 1 GiB, no trimming; "
                  "no page faults after warm-up, every provider).")
    if not args.quick:
        default_batch = 256 if device.type == "cuda" else 32
        family = ("conv" + ("-complex128" if dtype == torch.complex128 else "")
                  + (f"-batch{batch}" if batch != default_batch else "") + ("-steady-heap" if args.steady_heap else ""))
        print(write_results(family, rows, device, notes))
    return rows


if __name__ == "__main__":
    main()
