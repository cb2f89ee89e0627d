"""What every Triton kernel costs on a GPU, found without one: registers, spills, shared memory.

Triton compiles ahead of time for a named target (``triton.compile(ASTSource, target=GPUTarget(
"cuda", 90, 32))``) with its own bundled ptxas, so on a machine with no GPU each kernel can be
compiled for sm_90 (H100 / H200) or sm_80 (A100) in every configuration the ops launch it with
(the autotuner's configs, every dtype and input precision). The interpreter that runs our Triton
tests on the CPU checks results, never this: a config whose shared memory exceeds the SM's, or a
kernel that spills to local memory, passes there and is slow or fails on the GPU.

Per variant: registers per thread, spill stores / loads (bytes per thread, from ptxas -v on the
kernel's PTX) and dynamic shared memory (against the target's per-block maximum).

    python -m benchmarks.triton_resources                 # sm_90, table + results files
    python -m benchmarks.triton_resources --arch 80 --only conv
    python -m benchmarks.triton_resources --no-write --json rows.json   # what tests/ops/test_triton_compile.py runs

This is a static report (nothing runs), not a benchmark: no times. Results:
benchmarks/results/triton-sm<arch>-resources.{md,json}.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass

os.environ.setdefault("TRITON_DEFAULT_FP_FUSION", "1")  # Triton 3.9's default, without its warning

# Largest dynamic shared memory one block may opt into, per compute capability (CUDA programming
# guide, "Technical Specifications per Compute Capability").
MAX_SHARED = {75: 64 * 1024, 80: 163 * 1024, 86: 99 * 1024, 89: 99 * 1024, 90: 227 * 1024}
# Per SM (same table): shared memory, resident warps, resident blocks; 64 K registers everywhere,
# allocated per warp in units of 256; 1 KB of shared memory reserved per block (sm_80+).
SM_LIMITS = {75: (64 * 1024, 32, 16), 80: (164 * 1024, 64, 32), 86: (100 * 1024, 48, 16),
             89: (100 * 1024, 48, 24), 90: (228 * 1024, 64, 32)}


@dataclass
class Variant:
    family: str          # "conv", "activation", ...
    kernel: str          # the @triton.jit function's name
    label: str           # what distinguishes this variant (dtype, precision, config)
    fn: object           # the JITFunction
    signature: dict      # argument name -> Triton type ("*fp32", "i32", "constexpr")
    constexprs: dict
    num_warps: int = 4
    num_stages: int = 3


@dataclass
class Resources:
    family: str
    kernel: str
    label: str
    registers: int
    spill_stores: int
    spill_loads: int
    shared: int
    shared_max: int
    warps: int = 0
    arch: int = 90
    error: str = ""

    @property
    def fits(self) -> bool:
        return not self.error and self.shared <= self.shared_max

    def residency(self) -> tuple[int, str]:
        """(blocks resident per SM, what limits it: "registers", "shared", "warps" or "blocks"), as
        the CUDA occupancy calculator counts them."""
        smem_sm, warps_sm, blocks_sm = SM_LIMITS.get(self.arch, SM_LIMITS[90])
        if self.error or not self.fits or not self.warps:
            return 0, "-"
        regs_per_warp = -(-max(self.registers, 1) * 32 // 256) * 256
        limits = {"registers": (65536 // regs_per_warp) // self.warps,
                  "shared": smem_sm // (self.shared + 1024),
                  "warps": warps_sm // self.warps, "blocks": blocks_sm}
        limiter = min(limits, key=limits.get)
        return limits[limiter], limiter

    @property
    def occupancy(self) -> float:
        """Resident warps per SM / the SM's maximum."""
        return self.residency()[0] * self.warps / SM_LIMITS.get(self.arch, SM_LIMITS[90])[1]


def _jit(obj):
    """The JITFunction under an @triton.autotune wrapper (or the JITFunction itself)."""
    from triton.runtime.jit import JITFunction
    while not isinstance(obj, JITFunction):
        obj = obj.fn
    return obj


def _signature(fn, ptr: dict, constexprs: dict) -> dict:
    """Pointers as given (by name, "*" = default), every other non-constexpr argument i32."""
    sig = {}
    for name in fn.arg_names:
        if name in constexprs:
            sig[name] = "constexpr"
        elif name.endswith("_ptr"):
            sig[name] = ptr.get(name, ptr["*"])
        else:
            sig[name] = "i32"
    return sig


def variants(families=None, tiles=None, arch: int = 90) -> list[Variant]:
    """Every kernel in every configuration the ops launch it with (conv: or in the given
    (BM, BN, BK, num_warps, num_stages) tiles instead of the autotuner's, to try candidates)."""
    import triton

    from beamkernels.kernels.triton import activation as tka
    from beamkernels.kernels.triton import conv as tkc
    from beamkernels.kernels.triton import norm as tkn
    from beamkernels.kernels.triton import pool as tkp
    from beamkernels.ops.activation import _BLOCK as ACT_BLOCK
    from beamkernels.ops.norm import _BLOCK as NORM_BLOCK

    out: list[Variant] = []
    want = (lambda f: True) if not families else (lambda f: f in families)
    dts = [("fp32", ["tf32", "ieee"]), ("fp64", ["ieee"])]
    if want("conv"):
        for kname in ("conv2d_fwd_kernels", "conv2d_bwd_input_kernels", "conv2d_bwd_weight_kernels"):
            for dt, precs in dts:
                for prec in precs:
                    fn = _jit(getattr(tkc, kname)[prec])
                    cfgs = tkc.gpu_configs(prec, arch) if tiles is None else [
                        triton.Config({"BM": bm, "BN": bn, "BK": bk}, num_warps=w, num_stages=st)
                        for bm, bn, bk, w, st in tiles]
                    for cfg in cfgs:
                        c = dict(cfg.kwargs, PREC=prec)
                        if kname == "conv2d_fwd_kernels":  # the heaviest epilogue: bias + modReLU + saved z
                            c.update(HAS_BIAS=True, ACT=tka.MODRELU, SAVE_Z=True)
                        label = (f"{dt} {prec} BM{c['BM']} BN{c['BN']} BK{c['BK']} "
                                 f"w{cfg.num_warps} s{cfg.num_stages}")
                        out.append(Variant("conv", fn.__name__.lstrip("_"), label, fn,
                                           _signature(fn, {"*": "*" + dt}, c), c, cfg.num_warps, cfg.num_stages))
    if want("activation"):
        for kname in ("activation_fwd_kernel", "activation_bwd_kernel"):
            fn = _jit(getattr(tka, kname))
            for dt, _ in dts:
                for act in ("crelu", "zrelu", "modrelu", "cardioid"):
                    c = dict(ACT=tka.CODES[act], BLOCK=ACT_BLOCK)
                    out.append(Variant("activation", kname, f"{dt} {act} BLOCK{ACT_BLOCK}", fn,
                                       _signature(fn, {"*": "*" + dt}, c), c))
    if want("norm"):
        for kname in ("bn_stats_kernel", "bn_apply_kernel", "bn_bwd_reduce_kernel", "bn_bwd_apply_kernel"):
            fn = _jit(getattr(tkn, kname))
            for dt, _ in dts:
                c = dict(BLOCK=NORM_BLOCK)
                out.append(Variant("norm", kname, f"{dt} BLOCK{NORM_BLOCK}", fn,
                                   _signature(fn, {"*": "*" + dt}, c), c))
    if want("pool"):
        from beamkernels.ops import pool as opool
        for dt, _ in dts:
            c = dict(KH=2, KW=2, BLOCK=opool._BLOCK)
            fn = _jit(tkp.max_pool_fwd_kernel)
            out.append(Variant("pool", "max_pool_fwd_kernel", f"{dt} 2x2 BLOCK{opool._BLOCK}", fn,
                               _signature(fn, {"*": "*" + dt, "idx_ptr": "*i64"}, c), c))
            c = dict(BLOCK=opool._BLOCK)
            fn = _jit(tkp.max_pool_bwd_kernel)
            out.append(Variant("pool", "max_pool_bwd_kernel", f"{dt} BLOCK{opool._BLOCK}", fn,
                               _signature(fn, {"*": "*" + dt, "idx_ptr": "*i64"}, c), c))
    return out


def _ptxas(arch: int) -> str:
    """The ptxas Triton itself uses for this target (it bundles two)."""
    from triton.backends.nvidia.compiler import get_ptxas
    return get_ptxas(arch).path


def compile_variant(v: Variant, arch: int = 90) -> Resources:
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    shared_max = MAX_SHARED.get(arch, 48 * 1024)
    try:
        k = triton.compile(ASTSource(fn=v.fn, signature=v.signature, constexprs=v.constexprs),
                           target=GPUTarget("cuda", arch, 32),
                           options=dict(num_warps=v.num_warps, num_stages=v.num_stages))
    except Exception as e:  # a kernel that does not compile for this target is a finding, not a crash
        return Resources(v.family, v.kernel, v.label, 0, 0, 0, 0, shared_max, v.num_warps, arch,
                         f"{type(e).__name__}: {e}"[:300])
    # ptxas -v on Triton's own PTX, for the target Triton compiled it for (sm_90a on sm_90).
    gpu = "sm_%s" % k.metadata.arch.removeprefix("sm") if isinstance(k.metadata.arch, str) else f"sm_{arch}"
    with tempfile.TemporaryDirectory() as d:
        ptx = os.path.join(d, "k.ptx")
        with open(ptx, "w") as f:
            f.write(k.asm["ptx"])
        if arch == 90 and not gpu.endswith("a"):
            gpu += "a"
        r = subprocess.run([_ptxas(arch), "-v", f"--gpu-name={gpu}", ptx, "-o", os.path.join(d, "k.cubin")],
                           capture_output=True, text=True)
    text = r.stdout + r.stderr
    regs = re.search(r"Used (\d+) registers", text)
    spill = re.search(r"(\d+) bytes spill stores, (\d+) bytes spill loads", text)
    if r.returncode != 0 or not regs or not spill:
        return Resources(v.family, v.kernel, v.label, 0, 0, 0, k.metadata.shared, shared_max, v.num_warps, arch,
                         "ptxas: " + text.strip()[-300:])
    return Resources(v.family, v.kernel, v.label, int(regs.group(1)), int(spill.group(1)), int(spill.group(2)),
                     k.metadata.shared, shared_max, v.num_warps, arch)


def _row(r: Resources) -> dict:
    blocks, limiter = r.residency()
    return asdict(r) | {"fits": r.fits, "blocks_per_sm": blocks, "limited_by": limiter, "occupancy": r.occupancy}


def _markdown(rows: list[Resources], arch: int, meta: dict) -> str:
    lines = [f"# Triton kernels compiled for sm_{arch} without a GPU: registers, spills, shared memory", "",
             f"Written {meta['date']} by `python -m benchmarks.triton_resources --arch {arch}`; triton "
             f"{meta['triton']}, torch {meta['torch']}, beamkernels {meta['beamkernels']}. Static: nothing ran, "
             "no times. Spills in bytes per thread (ptxas -v); shared = dynamic shared memory per block, "
             f"the target's maximum is {MAX_SHARED.get(arch, 48 * 1024) // 1024} KB (configs above it "
             "cannot launch; the autotuner skips them). Blocks per SM and occupancy (resident warps / the "
             "SM's maximum) as the CUDA occupancy calculator counts them, with what limits them.", "",
             "| family | kernel | variant | registers | spill stores | spill loads | shared KB | fits | "
             "blocks / SM (limit) | occupancy |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if r.error:
            lines.append(f"| {r.family} | {r.kernel} | {r.label} | - | - | - | - | **{r.error}** | - | - |")
        else:
            blocks, limiter = r.residency()
            lines.append(f"| {r.family} | {r.kernel} | {r.label} | {r.registers} | {r.spill_stores} | "
                         f"{r.spill_loads} | {r.shared / 1024:.1f} | {'yes' if r.fits else '**no**'} | "
                         f"{blocks} ({limiter}) | {r.occupancy:.0%} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--arch", type=int, default=90, help="compute capability x10 (90 = H100/H200, 80 = A100)")
    p.add_argument("--only", default="", help="comma-separated families (conv, activation, norm, pool)")
    p.add_argument("--no-write", action="store_true", help="print only, write no results files")
    p.add_argument("--match", default="", help="only variants whose label contains this text (e.g. 'fp64')")
    p.add_argument("--tiles", action="append", default=[],
                   help="conv: compile this BM,BN,BK,num_warps,num_stages tile instead of the autotuner's (repeatable)")
    p.add_argument("--json", default="", help="also write the rows to this JSON file (for tests)")
    a = p.parse_args(argv)
    # Compile for real: kernels defined under TRITON_INTERPRET=1 are interpreter functions, which
    # triton.compile cannot lower. (Set before beamkernels' Triton kernels are imported.)
    os.environ["TRITON_INTERPRET"] = "0"
    import torch
    import triton

    import beamkernels
    from benchmarks.common import RESULTS_DIR

    fams = [f for f in a.only.split(",") if f]
    tiles = [tuple(int(t) for t in spec.split(",")) for spec in a.tiles] or None
    if tiles and any(len(t) != 5 for t in tiles):
        p.error("--tiles takes BM,BN,BK,num_warps,num_stages")
    vs = [v for v in variants(fams or None, tiles, a.arch) if a.match in v.label]
    rows = []
    for i, v in enumerate(vs, 1):
        r = compile_variant(v, a.arch)
        rows.append(r)
        blocks, limiter = r.residency()
        state = r.error or (f"{r.registers} regs, spill {r.spill_stores}/{r.spill_loads} B, "
                            f"shared {r.shared / 1024:.1f} KB{'' if r.fits else ' (does not fit)'}, "
                            f"{blocks} blocks/SM ({limiter}), occupancy {r.occupancy:.0%}")
        print(f"[{i}/{len(vs)}] {v.kernel} {v.label}: {state}", flush=True)
    meta = dict(date=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"), arch=a.arch,
                triton=triton.__version__, torch=torch.__version__, beamkernels=beamkernels.__version__)
    payload = dict(meta, rows=[_row(r) for r in rows])
    base = os.path.join(RESULTS_DIR, f"triton-sm{a.arch}-resources")
    for path, write in ((a.json, bool(a.json)), (base + ".json", not a.no_write)):
        if write:
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
            with open(path, "w") as f:
                json.dump(payload, f, indent=1)
    if not a.no_write:
        with open(base + ".md", "w") as f:
            f.write(_markdown(rows, a.arch, meta))
        print(f"wrote {base}.md / .json")
    return 1 if any(r.error for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
