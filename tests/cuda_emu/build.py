"""Builds beamkernels' CUDA kernels and CUDA glue for the CPU emulator (include/bk_cuda_emu.h).

The sources are taken as they are from csrc/ and rewritten in a build folder in five ways only:
  * `kernel<<<grid, block, smem, stream>>>(args)` becomes
    `::bk_emu::launch<&kernel>(::bk_emu::LaunchCfg(grid, block, smem, stream), args)`;
  * the glue registers its kernels under the dispatch key CPU of a separate op namespace,
    `beamkernels_cuda_emu` (TORCH_LIBRARY_IMPL(beamkernels, CUDA, m) -> (beamkernels_cuda_emu, CPU, m)),
    so they run on CPU tensors beside the real CPU backend;
  * that namespace gets the schemas of csrc/ops.cpp (its TORCH_LIBRARY block, renamed);
  * each `__shared__` array declaration is followed by `::bk_emu::poison_shared(name, sizeof(name));`;
  * each kernel's `__launch_bounds__` is registered under its name, for the launch check.
Everything else (the kernels, the params structs, the glue's checks and launches) is the code that
a GPU build compiles. `load()` returns the extension module; the ops are
torch.ops.beamkernels_cuda_emu.*.
"""

from __future__ import annotations

import functools
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CSRC = os.path.join(ROOT, "csrc")
HERE = os.path.dirname(os.path.abspath(__file__))
NAMESPACE = "beamkernels_cuda_emu"


def _matching(src: str, i: int, open_: str, close: str) -> int:
    """Index of the bracket that closes src[i] (== open_)."""
    depth = 0
    for j in range(i, len(src)):
        if src[j] == open_:
            depth += 1
        elif src[j] == close:
            depth -= 1
            if depth == 0:
                return j
    raise ValueError(f"unbalanced {open_!r} at offset {i}")


_BOUNDS = re.compile(r"__launch_bounds__\(\s*([^,)]+?)\s*(?:,[^)]*)?\)\s*(\w+)\s*\(")


def register_launch_bounds(src: str) -> str:
    """Before each kernel declared with `__launch_bounds__(max_threads, ...)` (and its template header),
    a registration of max_threads under the kernel's name, which the emulator enforces at launch as a
    GPU does."""
    lines = src.split("\n")
    for m in reversed(list(_BOUNDS.finditer(src))):
        row = src.count("\n", 0, m.start())
        while row > 0 and lines[row - 1].lstrip().startswith("template"):
            row -= 1
        lines.insert(row, f"[[maybe_unused]] static const bool bk_emu_bound_{m.group(2)} = "
                          f"::bk_emu::register_launch_bounds(\"{m.group(2)}\", {m.group(1)});")
    return "\n".join(lines)


def rewrite_launches(src: str) -> str:
    """`callee<<<cfg>>>(args)` -> `::bk_emu::launch<&callee>(::bk_emu::LaunchCfg(cfg), args)`."""
    out, i = [], 0
    while True:
        j = src.find("<<<", i)
        if j < 0:
            out.append(src[i:])
            return "".join(out)
        k = j
        if src[k - 1] == ">":  # template arguments: walk back to their '<'
            depth, k = 0, k - 1
            while True:
                if src[k] == ">":
                    depth += 1
                elif src[k] == "<":
                    depth -= 1
                    if depth == 0:
                        break
                k -= 1
        m = re.search(r"[A-Za-z_][\w:]*\s*$", src[i:k])
        if m is None:
            raise ValueError(f"no kernel name before '<<<' at offset {j}")
        start = i + m.start()
        callee = src[start:j].strip()
        e = src.find(">>>", j)
        cfg = src[j + 3:e]
        p = e + 3
        while src[p].isspace():
            p += 1
        if src[p] != "(":
            raise ValueError(f"no argument list after '>>>' at offset {e}")
        q = _matching(src, p, "(", ")")
        args = src[p + 1:q]
        out.append(src[i:start])
        out.append(f"::bk_emu::launch<&{callee}>(::bk_emu::LaunchCfg({cfg}), {args})")
        i = q + 1


_SHARED = re.compile(r"(__shared__\s+(?:__align__\(\d+\)\s+)?[^;=(){}]*?\b(\w+)\s*(?:\[[^\]]*\])+\s*;)")


def poison_shared(src: str) -> str:
    """`__shared__ T name[...];` -> the same plus `::bk_emu::poison_shared(name, sizeof(name));`."""
    out = _SHARED.sub(lambda m: f"{m.group(1)} ::bk_emu::poison_shared({m.group(2)}, sizeof({m.group(2)}));", src)
    if out.count("poison_shared(") != src.count("__shared__"):
        raise ValueError("a __shared__ declaration that is not an array: extend build.poison_shared")
    return out


def rewrite_registration(src: str) -> str:
    src = src.replace("TORCH_LIBRARY_IMPL(beamkernels, CUDA, m)", f"TORCH_LIBRARY_IMPL({NAMESPACE}, CPU, m)")
    src = src.replace("TORCH_LIBRARY_IMPL(beamkernels, KEY, m)", f"TORCH_LIBRARY_IMPL({NAMESPACE}, KEY, m)")
    return src.replace("BEAMKERNELS_REGISTER_ACTIVATIONS(CUDA,", "BEAMKERNELS_REGISTER_ACTIVATIONS(CPU,")


def schema_source() -> str:
    src = open(os.path.join(CSRC, "ops.cpp")).read()
    start = src.index("TORCH_LIBRARY(beamkernels, m)")
    end = _matching(src, src.index("{", start), "{", "}")
    block = src[start:end + 1].replace("TORCH_LIBRARY(beamkernels, m)", f"TORCH_LIBRARY({NAMESPACE}, m)")
    return "// Generated by tests/cuda_emu/build.py from csrc/ops.cpp.\n#include <torch/library.h>\n\n" + block + "\n"


def _write(path: str, text: str) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if os.path.exists(path) and open(path).read() == text:
        return  # unchanged: keep the timestamp, so ninja does not rebuild it
    with open(path, "w") as f:
        f.write(text)


def generate(build_dir: str) -> list[str]:
    """Writes the rewritten csrc tree under build_dir/csrc; returns the sources to compile."""
    gen = os.path.join(build_dir, "csrc")
    sources = []
    for dirpath, _, files in os.walk(CSRC):
        if os.path.relpath(dirpath, CSRC) == "cpu":
            continue
        for name in files:
            if not name.endswith((".h", ".cu", ".cpp")) or name == "ops.cpp":
                continue
            text = open(os.path.join(dirpath, name)).read()
            rel = os.path.relpath(os.path.join(dirpath, name), CSRC)
            if name.endswith(".cu"):
                text, rel = register_launch_bounds(poison_shared(rewrite_launches(text))), rel[:-3] + "_emu.cpp"
            _write(os.path.join(gen, rel), rewrite_registration(text))
            if rel.startswith("cuda" + os.sep) and rel.endswith(".cpp"):  # kernels and glue
                sources.append(os.path.join(gen, rel))
    _write(os.path.join(gen, "schemas_emu.cpp"), schema_source())
    sources.sort()
    _write(os.path.join(gen, "selftest_emu.cpp"),
           register_launch_bounds(poison_shared(rewrite_launches(open(os.path.join(HERE, "selftest.cu")).read()))))
    return sources + [os.path.join(gen, "schemas_emu.cpp"), os.path.join(gen, "selftest_emu.cpp"),
                      os.path.join(HERE, "runtime.cpp")]


@functools.lru_cache(maxsize=None)
def load(verbose: bool = False):
    """Builds (once per process; ninja skips unchanged files) and imports the emulated extension."""
    from torch.utils.cpp_extension import load as load_ext

    # ninja as the package's build gets it: from the virtual environment (make setup installs it).
    bindir = os.path.dirname(sys.executable)
    if bindir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bindir + os.pathsep + os.environ.get("PATH", "")
    build_dir = os.environ.get("BEAMKERNELS_CUDA_EMU_BUILD", os.path.join(ROOT, "build", "cuda_emu"))
    sources = generate(build_dir)
    ext_dir = os.path.join(build_dir, "ext")
    os.makedirs(ext_dir, exist_ok=True)
    return load_ext(
        name="beamkernels_cuda_emu",
        sources=sources,
        extra_include_paths=[os.path.join(HERE, "include"), os.path.join(build_dir, "csrc")],
        extra_cflags=["-O1", "-std=c++17", "-fno-fast-math", "-ffp-contract=off"],
        # Calls to beamkernels::cuda::* bind to these emulated definitions even where a CUDA build
        # of the package (which defines the same names) is loaded in the same process.
        extra_ldflags=["-Wl,-Bsymbolic-functions"],
        build_directory=ext_dir,
        verbose=verbose,
    )
