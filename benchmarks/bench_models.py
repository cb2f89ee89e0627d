"""Training-step speed of zoo models: beamkernels kernels (backend auto) vs the SAME architecture
on PyTorch's native complex ops.

The native side is the same model under ``beamkernels.use_backend("reference")``: the reference
backend is plain PyTorch by definition (native complex F.conv2d, modReLU and whitening
batch-norm written with PyTorch ops), so both providers share weights and architecture and
differ only in the kernels. One training step = forward, the chordal (subspace) loss on F and W,
backward, SGD step. Checked before timing: both give the same F on the same weights.

Run: PYTHONPATH=. python -m benchmarks.bench_models [--device cuda] [--quick] [--steady-heap]
Targets (issue 5): >= 2x over native on CPU at batch 32, >= 4x on an H100.

CPU step times include page faults: glibc hands large buffers out as fresh mmap'ed memory (or
trims and regrows its heap), so every step faults its activations in again, by an amount that
depends on the allocator's history (the same U-Net step measured 996 and 1267 ms in two fresh
processes). --steady-heap first calls beamkernels.train.steady_heap() (glibc mallopt: mmap threshold
1 GiB, no trimming; what `beamkernels train` does on the CPU), so heap memory is reused and there
are no faults after warm-up, for both providers alike, and writes models-steady-heap-<device>.*: the
kernels' own speed-up, without the allocator's share.
"""

from __future__ import annotations

import argparse
import copy

import torch

import beamkernels
import beamkernels.nn as bnn
from beamkernels import models
from benchmarks.common import STEADY_HEAP_HELP, Case, Provider, default_device, run_cases, use_steady_heap, write_results

MODELS = {
    "thesis-complex-cnn": {},
    "complex-unet": {},
}


def count_flops(model: torch.nn.Module, H: torch.Tensor) -> float:
    """Useful real FLOPs of one forward (8 per complex multiply-add) in the convs and linears."""
    total = [0.0]

    def conv_hook(m, inp, out):
        k = m.weight.shape[2] * m.weight.shape[3]
        if isinstance(m, bnn.ComplexConvTranspose2d):
            total[0] += 8.0 * inp[0].numel() * (m.out_channels // m.groups) * k
        else:
            total[0] += 8.0 * out.numel() * (m.in_channels // m.groups) * k

    def linear_hook(m, inp, out):
        total[0] += 8.0 * out.numel() * m.in_features

    hooks = []
    for mod in model.modules():
        if isinstance(mod, (bnn.ComplexConv2d, bnn.ComplexConvTranspose2d)):
            hooks.append(mod.register_forward_hook(conv_hook))
        elif isinstance(mod, bnn.ComplexLinear):
            hooks.append(mod.register_forward_hook(linear_hook))
    with torch.no_grad():
        model(H)
    for h in hooks:
        h.remove()
    return total[0]


def _chordal(A: torch.Tensor, B: torch.Tensor) -> torch.Tensor:
    # Ns - ||B^H A||_F^2 with A orthonormalized: phase-invariant subspace distance.
    Q, _ = torch.linalg.qr(A)
    return (B.shape[-1] - (B.mH @ Q).abs().square().sum(dim=(-2, -1))).mean()


def make_step(model, backend: str, H, Ft, Wt):
    opt = torch.optim.SGD(model.parameters(), lr=1e-4)

    def step():
        with beamkernels.use_backend(backend):
            F, W = model(H)
            loss = _chordal(F, Ft) + _chordal(W, Wt)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

    def check():
        with beamkernels.use_backend(backend), torch.no_grad():
            return model(H)[0]

    return step, check


def build_cases(device: torch.device, batch: int, names: list[str]) -> list[Case]:
    cases = []
    for name in names:
        torch.manual_seed(0)
        base = models.create(name, **MODELS[name]).to(device)
        H = torch.randn(batch, 5, 36, 144, dtype=torch.complex64, device=device)
        U, _, Vh = torch.linalg.svd(H, full_matrices=False)
        Ft, Wt = Vh[..., :2, :].mH.contiguous(), U[..., :2].contiguous()
        flops = 3.0 * count_flops(base, H)  # fwd + bwd ~ 3 x fwd
        ref_model = copy.deepcopy(base)
        _, ref_check = make_step(ref_model, "reference", H, Ft, Wt)
        providers = []
        backends = [("beamkernels[auto]", "auto")]
        if device.type == "cuda" and "triton" in beamkernels.available_backends(device):
            backends.append(("beamkernels[triton]", "triton"))
        backends.append(("pytorch native", "reference"))
        for label, b in backends:
            step, check = make_step(copy.deepcopy(base), b, H, Ft, Wt)
            providers.append(Provider(label, step, check))
        cases.append(Case(family="models", op=name, mode="train step", shape=f"B={batch} [5,36,144]",
                          providers=providers, baseline="pytorch native", flops=flops, reference=ref_check,
                          rtol=1e-3, atol=1e-3,
                          extra={"parameters": models.count_parameters(base)}))
    return cases


def main(argv: list[str] | None = None) -> list[dict]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default=None)
    p.add_argument("--quick", action="store_true", help="batch 8, short timing (checks the script works)")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--models", default=",".join(MODELS))
    p.add_argument("--min-run-time", type=float, default=2.0)
    p.add_argument("--steady-heap", action="store_true", help=STEADY_HEAP_HELP)
    a = p.parse_args(argv)
    if a.steady_heap:
        use_steady_heap(p)
    device = default_device(a.device)
    batch = 8 if a.quick else a.batch
    # A U-Net step takes ~1-2 s on the CPU: at least 10 s per provider, so the median has >= 5 samples
    # (run_all's default 0.5 s would time a single step).
    mrt = 0.2 if a.quick else max(a.min_run_time, 10.0)
    print(f"bench_models on {device}, batch {batch}; backends {beamkernels.available_backends(device)}")
    rows = run_cases(build_cases(device, batch, a.models.split(",")), device, min_run_time=mrt)
    notes = ("One training step (forward, subspace loss, backward, SGD) of the zoo model; 'pytorch native' = the "
             "same model under use_backend('reference') (native complex conv2d, plain-PyTorch modReLU and "
             "whitening BN). GFLOP/s counts conv + linear FLOPs only (8 per complex MAC, step = 3 x forward).")
    if a.steady_heap:
        notes += (" Run after beamkernels.train.steady_heap() (glibc mallopt: mmap threshold 1 GiB, no trimming; "
                  "no page faults after warm-up, both providers).")
    if not a.quick:
        write_results("models-steady-heap" if a.steady_heap else "models", rows, device, notes)
    return rows


if __name__ == "__main__":
    main()
