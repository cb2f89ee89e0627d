"""Shared benchmark utilities: timing (side by side, warmed up, synchronized, medians and 20/80
quantiles), the machine's measured copy bandwidth and GEMM rate (the roofline floor of each case:
max(FLOPs / GEMM rate, compulsory bytes / copy bandwidth)), and result files (CSV + JSON + markdown
table, with device name, library versions and date) under benchmarks/results/.

A benchmark script builds a list of `Case`s (one shape/mode) each with several providers, calls
`run_cases`, and `write_results`. Every provider's output is checked against the reference
before it is timed; a provider that disagrees is still timed but its status says "differs" (other
libraries sometimes define an op differently), and one that raises is reported, not timed.
"""

from __future__ import annotations

import csv
import datetime as _dt
import json
import os
import platform
import statistics
import sys
from dataclasses import dataclass, field
from typing import Callable

import torch
import torch.utils.benchmark as tub

# Result files go to benchmarks/results/, or to the folder named by BEAMKERNELS_RESULTS_DIR (a second
# machine's runs beside the main ones, e.g. benchmarks/results/amd-epyc-zen3-avx2/).
RESULTS_DIR = os.path.abspath(os.environ.get("BEAMKERNELS_RESULTS_DIR")
                              or os.path.join(os.path.dirname(os.path.abspath(__file__)), "results"))


@dataclass
class Provider:
    name: str
    fn: Callable[[], object]            # runs the measured work once (inputs captured)
    check: Callable[[], object] | None = None  # returns the output to compare (default: fn)


@dataclass
class Case:
    family: str                          # e.g. "activation"
    op: str                              # e.g. "modrelu"
    mode: str                            # "forward" | "backward" | "forward+backward"
    shape: str                           # human-readable shape
    providers: list[Provider]
    baseline: str                        # provider name the speed-up is relative to
    bytes_moved: float = 0.0             # compulsory bytes (for GB/s and fraction of copy bw)
    flops: float = 0.0                   # useful FLOPs (for GFLOP/s)
    reference: Callable[[], object] | None = None
    rtol: float = 1e-4
    atol: float = 1e-4
    extra: dict = field(default_factory=dict)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def time_fn(fn: Callable[[], object], device: torch.device, min_run_time: float = 0.5) -> dict:
    """Median and 20/80 quantiles in seconds. CPU: torch.utils.benchmark (warm-up included,
    adaptive repetitions); GPU: triton.testing.do_bench style with CUDA events."""
    if device.type == "cuda":
        for _ in range(3):
            fn()
        torch.cuda.synchronize()
        times = []
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        cache = torch.empty(256 * 1024 * 1024 // 4, dtype=torch.int32, device=device)
        deadline = max(10, int(min_run_time / 1e-4))
        for _ in range(min(deadline, 200)):
            cache.zero_()  # flush L2 between repetitions
            start.record()
            fn()
            end.record()
            torch.cuda.synchronize()
            times.append(start.elapsed_time(end) * 1e-3)
        q = statistics.quantiles(times, n=10)
        return {"median": statistics.median(times), "q20": q[1], "q80": q[7], "n": len(times)}
    fn()  # warm-up
    t = tub.Timer(stmt="fn()", globals={"fn": fn}, num_threads=torch.get_num_threads())
    m = t.blocked_autorange(min_run_time=min_run_time)
    raw = [x / m.number_per_run for x in m.raw_times]
    if len(raw) >= 5:
        q = statistics.quantiles(raw, n=10)
        q20, q80 = q[1], q[7]
    else:
        q20, q80 = min(raw), max(raw)
    return {"median": m.median, "q20": q20, "q80": q80, "n": len(raw) * m.number_per_run}


_COPY_BW: dict[str, float] = {}


def copy_bandwidth(device: torch.device, moved_bytes: int = 512 * 1024 * 1024) -> float:
    """Measured bandwidth in bytes/s of a plain tensor copy that moves `moved_bytes` in all (read +
    write), cached per (device, size). An op is compared with a copy of the same traffic, so both
    see the same cache residency (a 21 MB working set fits this CPU's 32 MB L3; the default 512 MB
    measures DRAM)."""
    key = f"{device}:{moved_bytes}"
    if key not in _COPY_BW:
        n = max(1, moved_bytes // 8)  # two float32 buffers of n elements: 8n bytes moved
        src = torch.randn(n, device=device)
        dst = torch.empty_like(src)
        r = time_fn(lambda: dst.copy_(src), device, min_run_time=0.5)
        _COPY_BW[key] = 8 * n / r["median"]
    return _COPY_BW[key]


_GEMM_RATE: dict[str, float] = {}


def gemm_rate(device: torch.device) -> float:
    """Measured FLOP/s of a large real matrix product, the compute roof for the roofline floor: fp32
    sgemm on the CPU (n = 2048); on a GPU n = 8192 in the precision torch's convs use (TF32 tensor
    cores while beamkernels.conv_tf32_enabled(), the default; else fp32). Cached per device."""
    from beamkernels import conv_tf32_enabled

    key = str(device)
    if key not in _GEMM_RATE:
        n = 8192 if device.type == "cuda" else 2048
        a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
        c = torch.empty(n, n, device=device)
        old = torch.backends.cuda.matmul.allow_tf32
        torch.backends.cuda.matmul.allow_tf32 = device.type == "cuda" and conv_tf32_enabled()
        try:
            r = time_fn(lambda: torch.mm(a, b, out=c), device, min_run_time=0.5)
        finally:
            torch.backends.cuda.matmul.allow_tf32 = old
        _GEMM_RATE[key] = 2.0 * n ** 3 / r["median"]
    return _GEMM_RATE[key]


def floor_seconds(case: "Case", device: torch.device) -> float | None:
    """The roofline floor of a case: max(FLOPs / measured GEMM rate, compulsory bytes / measured
    bandwidth of a same-size copy); None without FLOPs or bytes."""
    t = 0.0
    if case.flops:
        t = max(t, case.flops / gemm_rate(device))
    if case.bytes_moved:
        t = max(t, case.bytes_moved / copy_bandwidth(device, int(case.bytes_moved)))
    return t or None


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    name, flags = platform.processor() or platform.machine(), set()
    try:
        with open("/proc/cpuinfo") as f:
            fields = dict(line.split(":", 1) for line in f.read().split("\n\n")[0].splitlines() if ":" in line)
        fields = {k.strip(): v.strip() for k, v in fields.items()}
        name, flags = fields.get("model name", name), set(fields.get("flags", "").split())
    except OSError:
        pass
    # The vector ISA the CPU kernels' clones run with (the same model name covers several generations).
    isa = "AVX-512, " if "avx512f" in flags else "AVX2, " if "avx2" in flags else ""
    return f"{name} ({isa}{torch.get_num_threads()} threads)"


def environment(device: torch.device) -> dict:
    import beamkernels

    env = {
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "device": device_name(device),
        "device_type": device.type,
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "beamkernels": beamkernels.__version__,
        "build": beamkernels.build_info(),
        "threads": torch.get_num_threads(),
    }
    for mod in ("triton", "complextorch", "torchcvnn", "complexPyTorch", "cplxmodule"):
        try:
            m = __import__(mod)
            env[mod] = getattr(m, "__version__", "installed")
        except Exception:
            pass
    return env


def _close(a, b, rtol, atol) -> bool:
    if isinstance(a, (tuple, list)):
        return all(_close(x, y, rtol, atol) for x, y in zip(a, b))
    if isinstance(a, torch.Tensor):
        return torch.allclose(a.detach().to(b.dtype), b.detach(), rtol=rtol, atol=atol)
    return True


def run_cases(cases: list[Case], device: torch.device, min_run_time: float = 0.5, verbose: bool = True) -> list[dict]:
    rows = []
    for case in cases:
        bw = copy_bandwidth(device, int(case.bytes_moved)) if case.bytes_moved else None
        floor = floor_seconds(case, device) if case.flops else None  # roofline floor: compute-bound cases
        expected = case.reference() if case.reference is not None else None
        timings = {}
        for p in case.providers:
            status = "ok"
            if expected is not None:
                try:
                    out = (p.check or p.fn)()
                    if not _close(out, expected, case.rtol, case.atol):
                        status = "differs from reference"
                except Exception as e:  # a provider that fails is reported, not hidden
                    status = f"error: {type(e).__name__}: {str(e)[:120]}"
            r = time_fn(p.fn, device, min_run_time) if not status.startswith("error") else None
            timings[p.name] = (status, r)
        base = timings.get(case.baseline, ("", None))[1]
        for name, (status, r) in timings.items():
            row = {
                "family": case.family, "op": case.op, "mode": case.mode, "shape": case.shape, "provider": name,
                "status": status, "median_ms": None, "q20_ms": None, "q80_ms": None,
                "speedup_vs_" + "baseline": None, "baseline": case.baseline, "GB/s": None, "frac_copy_bw": None,
                "GFLOP/s": None, "frac_floor": None,
            }
            if r is not None:
                row.update(median_ms=r["median"] * 1e3, q20_ms=r["q20"] * 1e3, q80_ms=r["q80"] * 1e3)
                if base is not None:
                    row["speedup_vs_baseline"] = base["median"] / r["median"]
                if case.bytes_moved:
                    row["GB/s"] = case.bytes_moved / r["median"] / 1e9
                    row["frac_copy_bw"] = case.bytes_moved / r["median"] / bw
                if case.flops:
                    row["GFLOP/s"] = case.flops / r["median"] / 1e9
                if floor:
                    row["frac_floor"] = floor / r["median"]
            row.update(case.extra)
            rows.append(row)
            if verbose:
                ms = f"{row['median_ms']:.3f} ms" if row["median_ms"] is not None else status
                sp = f" x{row['speedup_vs_baseline']:.2f}" if row["speedup_vs_baseline"] else ""
                fr = f" {100 * row['frac_copy_bw']:.0f}% copy-bw" if row["frac_copy_bw"] else ""
                fl = f" {100 * row['frac_floor']:.0f}% of floor" if row["frac_floor"] else ""
                print(f"  {case.op:>14} {case.mode:>16} {case.shape:>22} {name:>22}: {ms}{sp}{fr}{fl}", flush=True)
    return rows


def markdown_table(rows: list[dict]) -> str:
    floors = any(r.get("frac_floor") for r in rows)
    head = "| op | mode | shape | provider | median ms (q20-q80) | speed-up vs baseline | GB/s | % copy bw | GFLOP/s |"
    head += " % of floor |" if floors else ""
    lines = [head, "|" + "---|" * (10 if floors else 9)]
    for r in rows:
        if r["median_ms"] is None:
            t = r["status"]
        else:
            t = f"{r['median_ms']:.3f} ({r['q20_ms']:.3f}-{r['q80_ms']:.3f})"
            if r["status"] != "ok":
                t += f" [{r['status']}]"
        sp = f"{r['speedup_vs_baseline']:.2f}x" if r.get("speedup_vs_baseline") else ""
        gb = f"{r['GB/s']:.1f}" if r.get("GB/s") else ""
        fr = f"{100 * r['frac_copy_bw']:.0f}%" if r.get("frac_copy_bw") else ""
        gf = f"{r['GFLOP/s']:.1f}" if r.get("GFLOP/s") else ""
        line = f"| {r['op']} | {r['mode']} | {r['shape']} | {r['provider']} | {t} | {sp} ({r['baseline']}) | {gb} | {fr} | {gf} |"
        if floors:
            line += f" {100 * r['frac_floor']:.0f}% |" if r.get("frac_floor") else " |"
        lines.append(line)
    return "\n".join(lines)


def write_results(name: str, rows: list[dict], device: torch.device, notes: str = "") -> str:
    """Writes benchmarks/results/<name>-<device_type>.{csv,json,md}; returns the markdown."""
    os.makedirs(RESULTS_DIR, exist_ok=True)
    env = environment(device)
    env["copy_bandwidth_GBps"] = copy_bandwidth(device) / 1e9  # DRAM-sized copy, for reference
    floors = any(r.get("frac_floor") for r in rows)
    if floors:
        env["gemm_GFLOPs"] = gemm_rate(device) / 1e9
    stem = os.path.join(RESULTS_DIR, f"{name}-{device.type}")
    with open(stem + ".json", "w") as f:
        json.dump({"environment": env, "rows": rows}, f, indent=1, default=str)
    keys = sorted({k for r in rows for k in r}, key=lambda k: list(rows[0]).index(k) if k in rows[0] else 99)
    with open(stem + ".csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=keys)
        w.writeheader()
        w.writerows(rows)
    md = (f"# {name} on {env['device']}\n\n{env['date']}; torch {env['torch']}; beamkernels {env['beamkernels']}; "
          f"triton {env.get('triton', '-')}; threads {env['threads']}; measured copy bandwidth "
          f"{env['copy_bandwidth_GBps']:.1f} GB/s (512 MB copy). '% copy bw' compares each op with a plain "
          f"tensor copy moving the same number of bytes (same cache residency)."
          + (f" '% of floor': the roofline floor max(FLOPs / {env['gemm_GFLOPs']:.0f} GFLOP/s, the measured rate of a "
             f"large real GEMM{' (TF32)' if device.type == 'cuda' and _tf32() else ''}; compulsory bytes / same-size copy "
             f"bandwidth) over the measured time (FLOPs: 8 per complex MAC; Gauss's 3 multiplies can pass 100%)."
             if floors else "")
          + "\n\n" + (notes + "\n\n" if notes else "") + markdown_table(rows) + "\n")
    with open(stem + ".md", "w") as f:
        f.write(md)
    return md


def _tf32() -> bool:
    from beamkernels import conv_tf32_enabled

    return conv_tf32_enabled()


def default_device(arg: str | None = None) -> torch.device:
    if arg:
        return torch.device(arg)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


STEADY_HEAP_HELP = ("keep freed memory in glibc's heap first (beamkernels.train.steady_heap(): no page faults "
                    "per call after warm-up, for every provider alike); writes <family>-steady-heap-<device>.*")


def use_steady_heap(parser) -> None:
    """--steady-heap: CPU times without the allocator's page faults (glibc hands large buffers out as
    fresh mmap'ed memory, or trims and regrows its heap, by an amount that depends on its history)."""
    from beamkernels.train import steady_heap

    if not steady_heap():
        parser.error("--steady-heap needs glibc (Linux): steady_heap() cannot change this C library's allocator")
