"""Build checks that need no GPU: every torch-free CUDA kernel file compiles with the nvcc found on
the machine (for sm_90, no kernel spilling beyond a small budget: ptxas -v), and every CUDA glue
file passes a host-compiler syntax check against torch's headers (so CI catches CUDA compile errors
without a GPU). Plus the facts reported by build_info()."""

from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess
import sys
import sysconfig
from concurrent.futures import ThreadPoolExecutor

import pytest
import torch

import beamkernels

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CU_FILES = sorted(glob.glob(os.path.join(ROOT, "csrc", "cuda", "*.cu")))
GLUE_FILES = sorted(glob.glob(os.path.join(ROOT, "csrc", "cuda", "*.cpp")))
NVCC = shutil.which("nvcc")
# Spill budget per thread on sm_90 (ptxas -v). The TF32 conv forward, held to 128 registers by
# __launch_bounds__(256, 2), spills 20 bytes (README, conv section); every other kernel none.
CUDA_SPILL_BUDGET = 64


def _cuda_include() -> str | None:
    cands = [os.environ.get("CUDA_HOME", ""), "/usr/local/cuda"] + sorted(glob.glob("/usr/local/cuda-*"), reverse=True)
    for c in cands:
        if c and os.path.isfile(os.path.join(c, "include", "cuda_runtime_api.h")):
            return os.path.join(c, "include")
    return None


def _run_all(cmds: list[list[str]]) -> list[subprocess.CompletedProcess]:
    with ThreadPoolExecutor(max_workers=max(1, os.cpu_count() or 1)) as ex:
        return list(ex.map(lambda c: subprocess.run(c, capture_output=True, text=True), cmds))


@pytest.mark.skipif(NVCC is None, reason="no nvcc on this machine")
def test_cuda_kernels_compile_with_nvcc(tmp_path):
    """Every kernel file compiles for sm_90, and no kernel spills beyond CUDA_SPILL_BUDGET."""
    assert CU_FILES, "no CUDA kernel files found"
    for f in CU_FILES:
        with open(f) as fh:
            src = fh.read()
        assert "torch/" not in src and "ATen/" not in src, f"{f} must not include torch headers"
    cmds = [[NVCC, "-std=c++17", "-arch=sm_90", "-c", f, "-I", os.path.join(ROOT, "csrc"), "-Xptxas", "-v",
             "-o", str(tmp_path / (os.path.basename(f) + ".o"))] for f in CU_FILES]
    spills, reported = [], set()
    for f, r in zip(CU_FILES, _run_all(cmds)):
        assert r.returncode == 0, f"nvcc failed on {os.path.relpath(f, ROOT)}:\n{r.stderr[-4000:]}"
        # ptxas -v: "Compiling entry function '<mangled>' for 'sm_90'" then "... N bytes spill stores ...".
        kernel = None
        for line in r.stderr.splitlines():
            m = re.search(r"Compiling entry function '(\w+)'", line)
            if m:
                kernel = m.group(1)
            m = re.search(r"(\d+) bytes spill stores", line)
            if m and kernel:
                reported.add(kernel)
                if int(m.group(1)) > CUDA_SPILL_BUDGET:
                    spills.append(f"{os.path.basename(f)}: {kernel}: {m.group(1)} bytes")
    # The parse found the kernels (a changed ptxas report format must not pass silently).
    assert any("conv2d_fwd_tf32_kernel" in k for k in reported), sorted(reported)[:5]
    assert not spills, f"CUDA kernels spilling more than {CUDA_SPILL_BUDGET} bytes per thread on sm_90:\n" + "\n".join(spills)


@pytest.mark.skipif(_cuda_include() is None, reason="no CUDA headers (cuda_runtime_api.h) on this machine")
def test_cuda_glue_syntax(tmp_path):
    """The torch glue of the CUDA backend, checked with the host compiler. The CPU wheel of torch
    lacks one generated header (c10/cuda/impl/cuda_cmake_macros.h); a two-line shim stands in."""
    shim = tmp_path / "shim" / "c10" / "cuda" / "impl"
    shim.mkdir(parents=True)
    (shim / "cuda_cmake_macros.h").write_text("#pragma once\n#define C10_CUDA_BUILD_SHARED_LIBS\n")
    tinc = os.path.join(os.path.dirname(torch.__file__), "include")
    cxx = os.environ.get("CXX", "g++")
    base = [cxx, "-std=c++17", "-fsyntax-only", "-DBEAMKERNELS_WITH_CUDA", "-I", str(tmp_path / "shim"),
            "-I", os.path.join(ROOT, "csrc"), "-I", tinc, "-I", os.path.join(tinc, "torch", "csrc", "api", "include"),
            "-I", _cuda_include(), "-I", sysconfig.get_paths()["include"]]
    for f, r in zip(GLUE_FILES, _run_all([base + [f] for f in GLUE_FILES])):
        assert r.returncode == 0, f"syntax check failed on {os.path.relpath(f, ROOT)}:\n{r.stderr[-4000:]}"


def test_build_info():
    info = beamkernels.build_info()
    assert info["version"] == beamkernels.__version__
    if info["extension"]:
        assert "cpu" in info["compiled_backends"]
        assert info["openmp"] is True and info["openmp_max_threads"] >= 1
        assert info["torch_version_built"].split("+")[0] == torch.__version__.split("+")[0]


def test_import_without_extension():
    """With beamkernels._C unavailable: import works, reference runs, the compiled backend says how
    to build it."""
    code = r"""
import sys, importlib.abc
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name == "beamkernels._C":
            raise ImportError("blocked for the test")
sys.meta_path.insert(0, Block())
import torch, beamkernels
assert not beamkernels.build_info()["extension"]
assert "cpu" not in beamkernels.available_backends()
x = torch.randn(2, 3, dtype=torch.complex64)
y = beamkernels.functional.crelu(x)  # auto -> reference
try:
    with beamkernels.use_backend("cpu"):
        beamkernels.functional.crelu(x)
except RuntimeError as e:
    assert "pip install --no-build-isolation -e ." in str(e), str(e)
    print("OK")
"""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                       env={**os.environ, "PYTHONPATH": ROOT})
    assert r.returncode == 0 and "OK" in r.stdout, r.stderr[-3000:]
