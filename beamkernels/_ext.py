"""Loads the compiled extension ``beamkernels._C`` if it was built.

``import beamkernels`` works without it (reference and Triton backends); a call that needs it
raises :class:`ExtensionNotBuiltError` with the exact command that builds it.
"""

from __future__ import annotations

BUILD_COMMAND = "pip install --no-build-isolation -e .   (or: make build)"

import torch  # noqa: F401,E402  (loads libc10/libtorch, which _C links against, before _C)

try:  # importing _C runs TORCH_LIBRARY and registers the beamkernels::* schemas and kernels
    from beamkernels import _C  # type: ignore[attr-defined]

    LOAD_ERROR: str | None = None
except ImportError as e:  # not built, or built against another torch
    _C = None
    LOAD_ERROR = f"{type(e).__name__}: {e}"

LOADED: bool = _C is not None


class ExtensionNotBuiltError(RuntimeError):
    pass


def build_info() -> dict:
    """Build facts of the compiled extension (version, compiled backends, CUDA archs, OpenMP)."""
    from beamkernels.version import __version__

    if _C is None:
        return {"version": __version__, "extension": False, "compiled_backends": [], "load_error": LOAD_ERROR}
    info = dict(_C.build_info())
    info["extension"] = True
    info["compiled_backends"] = list(info["compiled_backends"])
    return info


def _check_winograd_lanes_env() -> None:
    """BEAMKERNELS_CPU_WINOGRAD_LANES (read once by the C++ CPU conv): 8 runs the 8-tile Winograd
    kernels on an AVX-512 CPU too; 16 states the default there. Anything else is an error here,
    not a silent fallback."""
    import os

    value = os.environ.get("BEAMKERNELS_CPU_WINOGRAD_LANES")
    if value is None or _C is None:
        return
    lanes = _C.build_info().get("cpu_winograd_lanes", 8)
    if value.strip() not in ("8", "16"):
        raise ValueError(f"BEAMKERNELS_CPU_WINOGRAD_LANES must be 8 or 16; got {value!r}")
    if value.strip() == "16" and lanes != 16:
        raise ValueError("BEAMKERNELS_CPU_WINOGRAD_LANES=16 needs a CPU with AVX-512 (F, BW, DQ, VL); "
                         "this one runs the 8-lane kernels")


_check_winograd_lanes_env()

# Cached at import: resolve() reads it inside torch.compile'd code, which cannot call into pybind.
COMPILED_BACKENDS: tuple[str, ...] = tuple(_C.build_info()["compiled_backends"]) if _C is not None else ()


def compiled_backends() -> tuple[str, ...]:
    return COMPILED_BACKENDS


def require(what: str) -> None:
    if not LOADED:
        raise ExtensionNotBuiltError(
            f"beamkernels: {what} needs the compiled extension beamkernels._C, which is not available "
            f"({LOAD_ERROR}). Build it from the repository root with: {BUILD_COMMAND}"
        )
