"""The main job: every kernel benchmark, side by side, on the CPU (and on the GPU when there is
one). Prints a table of speed-ups and writes benchmarks/results/<family>-<device>.{csv,json,md}
plus benchmarks/results/SUMMARY-<device>.md.

    python -m benchmarks.run_all [--device cpu|cuda] [--only activation,conv] [--quick]

BEAMKERNELS_RESULTS_DIR=<folder> writes the files there instead (a second machine's runs, e.g.
benchmarks/results/amd-epyc-zen3-avx2/; every family's script honours it).
"""

from __future__ import annotations

import argparse
import glob
import importlib
import json
import os
import subprocess
import sys
import time

import torch

from benchmarks.common import RESULTS_DIR, default_device, device_name, environment

HERE = os.path.dirname(os.path.abspath(__file__))


def families() -> list[str]:
    return sorted(os.path.basename(p)[len("bench_"):-3] for p in glob.glob(os.path.join(HERE, "bench_*.py")))


def summary(rows: list[dict]) -> str:
    """Best beamkernels provider per case vs the baseline."""
    by_case: dict[tuple, list[dict]] = {}
    for r in rows:
        by_case.setdefault((r["family"], r["op"], r["mode"], r["shape"]), []).append(r)
    lines = ["| family | op | mode | shape | best beamkernels | ms | baseline | ms | speed-up | % copy bw |",
             "|" + "---|" * 10]
    for (fam, op, mode, shape), rs in by_case.items():
        ours = [r for r in rs if r["provider"].startswith("beamkernels[") and r["median_ms"] is not None
                and r["provider"] != "beamkernels[reference]"]
        base = [r for r in rs if r["provider"] == r["baseline"] and r["median_ms"] is not None]
        if not ours or not base:
            continue
        best = min(ours, key=lambda r: r["median_ms"])
        fr = f"{100 * best['frac_copy_bw']:.0f}%" if best.get("frac_copy_bw") else ""
        lines.append(f"| {fam} | {op} | {mode} | {shape} | {best['provider']} | {best['median_ms']:.3f} | "
                     f"{base[0]['provider']} | {base[0]['median_ms']:.3f} | {base[0]['median_ms'] / best['median_ms']:.2f}x | {fr} |")
    return "\n".join(lines)


def saved_summary(device_type: str) -> tuple[list[str], str]:
    """The summary over every family's latest results file (so that `--only conv` refreshes its rows
    and keeps the others): (one table row per family with its date and torch version, the table)."""
    rows, dates = [], []
    for fam in families():
        path = os.path.join(RESULTS_DIR, f"{fam}-{device_type}.json")
        if os.path.exists(path):
            with open(path) as f:
                data = json.load(f)
            rows += data["rows"]
            env = data["environment"]
            dates.append(f"| {fam} | {env.get('date', '?')} | {env.get('torch', '?')} |")
    return dates, summary(rows)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default=None, help="cpu or cuda (default: cuda if available, else cpu)")
    ap.add_argument("--only", default=None, help=f"comma-separated families of: {', '.join(families())}")
    ap.add_argument("--quick", action="store_true", help="small shapes, short timing, no result files")
    ap.add_argument("--min-run-time", type=float, default=0.5)
    args = ap.parse_args(argv)
    device = default_device(args.device)
    fams = args.only.split(",") if args.only else families()
    print(f"beamkernels benchmarks on {device_name(device)}: {', '.join(fams)}")
    all_rows = []
    for fam in fams:
        t0 = time.time()
        sub = ["--device", str(device), "--min-run-time", str(args.min_run_time)] + (["--quick"] if args.quick else [])
        if args.quick:  # smoke test: in process, no result files
            rows = importlib.import_module(f"benchmarks.bench_{fam}").main(sub) or []
        else:
            # Each family in a fresh process: CPU timings depend on the allocator's state (glibc's
            # dynamic mmap threshold, heap trimming: page faults per step), which earlier families
            # would otherwise leave behind (measured: the U-Net step 996 ms alone, 1171 ms after the
            # conv and linear families in the same process).
            subprocess.run([sys.executable, "-m", f"benchmarks.bench_{fam}"] + sub, check=True)
            with open(os.path.join(RESULTS_DIR, f"{fam}-{device.type}.json")) as f:
                rows = json.load(f)["rows"]
        print(f"  [{fam}: {time.time() - t0:.0f} s]")
        all_rows += rows
    print("\nSpeed-ups (best beamkernels backend vs each case's baseline):\n" + summary(all_rows))
    if not args.quick:
        dates, table = saved_summary(device.type)
        env = environment(device)
        path = os.path.join(RESULTS_DIR, f"SUMMARY-{device.type}.md")
        with open(path, "w") as f:
            f.write(f"# Benchmark summary on {env['device']}\n\nWritten {env['date']}; beamkernels {env['beamkernels']}. "
                    "Per-family details: the other files in this folder; each family was measured at:\n\n"
                    "| family | measured | torch |\n|---|---|---|\n" + "\n".join(dates) + "\n\n"
                    + table + "\n")
        print(f"\nwrote {path}")


if __name__ == "__main__":
    torch.manual_seed(0)
    main()
