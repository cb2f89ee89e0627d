"""Build beamkernels and its compiled extension ``beamkernels._C``.

Build with the torch that is already installed (so pip must not make an isolated build env):

    pip install --no-build-isolation -e .

Environment switches (all optional):

| variable                   | effect                                                        |
|----------------------------|---------------------------------------------------------------|
| BEAMKERNELS_FORCE_CUDA=1   | compile the CUDA sources even if torch.cuda is not available  |
| BEAMKERNELS_SKIP_CUDA=1    | never compile the CUDA sources                                |
| BEAMKERNELS_CUDA_ARCHS     | e.g. "80;90" (default), passed as -gencode for each arch      |
| BEAMKERNELS_SKIP_EXT=1     | pure-Python install (reference + Triton backends only)        |
| MAX_JOBS                   | parallel compile jobs for ninja                               |
| DEBUG=1                    | -O0 -g instead of -O3                                         |
"""

import glob
import os
import shutil

from setuptools import find_packages, setup

ROOT = os.path.dirname(os.path.abspath(__file__))


def _flag(name: str) -> bool:
    return os.environ.get(name, "0").lower() in ("1", "true", "yes", "on")


def _extensions():
    if _flag("BEAMKERNELS_SKIP_EXT"):
        return [], {}
    import torch
    from torch.utils.cpp_extension import BuildExtension, CppExtension, CUDAExtension, CUDA_HOME

    debug = _flag("DEBUG")
    want_cuda = not _flag("BEAMKERNELS_SKIP_CUDA") and (
        _flag("BEAMKERNELS_FORCE_CUDA")
        or (torch.cuda.is_available() and CUDA_HOME is not None)
        or (torch.version.cuda is not None and CUDA_HOME is not None and shutil.which("nvcc"))
    )
    cxx = ["-O0", "-g"] if debug else ["-O3"]
    # No errno / FP traps: lets GCC vectorize sqrt and guarded divisions (results are unchanged).
    cxx += ["-fopenmp", "-fno-math-errno", "-fno-trapping-math", "-DBEAMKERNELS_VERSION=\"%s\"" % _version()]
    # Kernels are torch-free and live next to their glue; include csrc/ for the shared headers.
    include_dirs = [os.path.join(ROOT, "csrc")]
    sources = sorted(glob.glob(os.path.join("csrc", "*.cpp")) + glob.glob(os.path.join("csrc", "cpu", "*.cpp")))
    if want_cuda:
        archs = os.environ.get("BEAMKERNELS_CUDA_ARCHS", "80;90").replace(",", ";").split(";")
        archs = [a.strip().replace(".", "") for a in archs if a.strip()]
        # No --use_fast_math: it flushes subnormals to zero and approximates sqrt / division, so
        # the GPU would disagree with the CPU and the reference (max-pool ties on tiny keys,
        # activations of tiny z). nvcc contracts to FMA by default.
        nvcc = ["-O0", "-g", "-G"] if debug else ["-O3"]
        nvcc += ["-lineinfo", "-DBEAMKERNELS_WITH_CUDA"]
        nvcc += [f"-gencode=arch=compute_{a},code=sm_{a}" for a in archs]
        cxx += ["-DBEAMKERNELS_WITH_CUDA", "-DBEAMKERNELS_CUDA_ARCHS=\"%s\"" % ";".join(archs)]
        # csrc/cuda/*.cu are torch-free kernels; csrc/cuda/*.cpp is their torch glue.
        sources += sorted(glob.glob(os.path.join("csrc", "cuda", "*.cu")) + glob.glob(os.path.join("csrc", "cuda", "*.cpp")))
        ext = CUDAExtension(
            "beamkernels._C", sources, include_dirs=include_dirs,
            extra_compile_args={"cxx": cxx, "nvcc": nvcc}, extra_link_args=["-fopenmp"],
        )
    else:
        ext = CppExtension(
            "beamkernels._C", sources, include_dirs=include_dirs,
            extra_compile_args={"cxx": cxx}, extra_link_args=["-fopenmp"],
        )
    return [ext], {"build_ext": BuildExtension.with_options(use_ninja=True)}


def _version() -> str:
    ns = {}
    with open(os.path.join(ROOT, "beamkernels", "version.py")) as f:
        exec(f.read(), ns)
    return ns["__version__"]


ext_modules, cmdclass = _extensions()

setup(
    name="beamkernels",
    version=_version(),
    packages=find_packages(include=["beamkernels", "beamkernels.*"]),
    ext_modules=ext_modules,
    cmdclass=cmdclass,
)
