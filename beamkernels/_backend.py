"""Backend selection: which implementation of an op runs.

Backends: ``reference`` (pure PyTorch, the specification), ``cpu`` (C++ with OpenMP), ``cuda``
(CUDA C++) and ``triton``. ``auto`` (the default) picks, per device, the first backend in
:data:`AUTO_ORDER` that implements the op and can run here. The order comes from the committed
benchmarks (benchmarks/results/, summarized in the README).

Choose explicitly with ``with beamkernels.use_backend("triton"): ...`` or the environment
variable ``BEAMKERNELS_BACKEND`` (read at import). An explicit backend that cannot run here is an
error, never a silent fallback.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
from typing import Iterator

import torch

from beamkernels import _ext

BACKENDS = ("reference", "cpu", "cuda", "triton")

# Per device type, the preference order of `auto`. CPU: the C++ kernels beat the reference on
# every op measured (benchmarks/results/). CUDA: the order is not yet measured on a GPU.
AUTO_ORDER: dict[str, tuple[str, ...]] = {
    "cpu": ("cpu", "reference"),
    "cuda": ("cuda", "triton", "reference"),
}
# Per-op exceptions to AUTO_ORDER, keyed (op name, device type), for ops where measurements
# say another backend wins.
AUTO_ORDER_PER_OP: dict[tuple[str, str], tuple[str, ...]] = {}


def _env_backend() -> str:
    name = os.environ.get("BEAMKERNELS_BACKEND", "auto").strip().lower() or "auto"
    if name != "auto" and name not in BACKENDS:
        raise ValueError(
            f"BEAMKERNELS_BACKEND must be one of auto, {', '.join(BACKENDS)}; got {name!r}"
        )
    return name


_DEFAULT = _env_backend()
_STACK: list[str] = []

TRITON_INSTALLED = importlib.util.find_spec("triton") is not None
# Triton kernels run on CPU tensors only in the interpreter, which must be switched on before
# triton is imported (TRITON_INTERPRET=1).
TRITON_INTERPRET = os.environ.get("TRITON_INTERPRET", "0") == "1"


@contextlib.contextmanager
def use_backend(name: str) -> Iterator[None]:
    """Run the ops inside the block with backend ``name`` (``auto`` restores the default)."""
    name = name.lower()
    if name != "auto" and name not in BACKENDS:
        raise ValueError(f"use_backend: name must be one of auto, {', '.join(BACKENDS)}; got {name!r}")
    _STACK.append(name)
    try:
        yield
    finally:
        _STACK.pop()


def current_backend() -> str:
    """The backend asked for right now: ``auto`` or an explicit name."""
    return _STACK[-1] if _STACK else _DEFAULT


def _why_not(backend: str, device: torch.device) -> str | None:
    """None if `backend` can run on `device` in this install, else the reason."""
    if backend == "reference":
        return None
    if backend == "cpu":
        if device.type != "cpu":
            return f"the 'cpu' backend runs on CPU tensors, got a tensor on {device}"
        if not _ext.LOADED:
            return f"the compiled extension is not built ({_ext.LOAD_ERROR}); build it with: {_ext.BUILD_COMMAND}"
        return None
    if backend == "cuda":
        if device.type != "cuda":
            return f"the 'cuda' backend runs on CUDA tensors, got a tensor on {device}"
        if not _ext.LOADED:
            return f"the compiled extension is not built ({_ext.LOAD_ERROR}); build it with: {_ext.BUILD_COMMAND}"
        if "cuda" not in _ext.compiled_backends():
            return "beamkernels._C was built without CUDA (rebuild on a machine with nvcc, or set BEAMKERNELS_FORCE_CUDA=1)"
        return None
    if backend == "triton":
        if not TRITON_INSTALLED:
            return "triton is not installed (pip install triton)"
        if device.type == "cuda":
            return None
        if device.type == "cpu" and TRITON_INTERPRET:
            return None
        return (
            f"Triton kernels run on CUDA tensors, or on CPU tensors under TRITON_INTERPRET=1 set before "
            f"import; got a tensor on {device}"
        )
    return f"unknown backend {backend!r}"


def available_backends(device: torch.device | str | None = None) -> list[str]:
    """The backends this install can run, on `device` (default: every device present here)."""
    if device is None:
        devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    else:
        devices = [torch.device(device)]
    return [b for b in BACKENDS if any(_why_not(b, d) is None for d in devices)]


def resolve(op: str, device: torch.device, implemented: tuple[str, ...] = BACKENDS) -> str:
    """The backend that runs `op` on `device`; raises if an explicit choice cannot run."""
    name = current_backend()
    if name == "auto":
        order = AUTO_ORDER_PER_OP.get((op, device.type), AUTO_ORDER.get(device.type, ("reference",)))
        for b in order:
            if b in implemented and _why_not(b, device) is None:
                return b
        return "reference"
    if name not in implemented:
        raise NotImplementedError(
            f"beamkernels.{op}: the '{name}' backend has no kernel for this op "
            f"(implemented: {', '.join(implemented)}). Use beamkernels.use_backend('auto') or one of those."
        )
    why = _why_not(name, device)
    if why is not None:
        raise RuntimeError(f"beamkernels.{op}: backend '{name}' cannot run here: {why}")
    return name


def conv_tf32_enabled() -> bool:
    """Whether complex64 convs on a GPU use TF32 tensor cores (the cuda and triton backends): the
    same switch as torch's own convs, ``torch.backends.cudnn.conv.fp32_precision`` (torch >= 2.9)
    or the older ``torch.backends.cudnn.allow_tf32``; TF32 by default. Read per conv, as torch's
    convs do (the operator-less ``allow_tf32`` getter raises once conv and RNN settings differ)."""
    getter = getattr(torch._C, "_get_fp32_precision_getter", None)
    if getter is not None:
        return getter("cuda", "conv") == "tf32"
    return bool(torch.backends.cudnn.allow_tf32)


@contextlib.contextmanager
def conv_tf32(enabled: bool) -> Iterator[None]:
    """Within the block, GPU convs (torch's and beamkernels') run on TF32 tensor cores (True) or
    in exact fp32 (False); the previous setting is restored after."""
    conv = getattr(torch.backends.cudnn, "conv", None)
    if conv is not None and hasattr(conv, "fp32_precision"):
        old = conv.fp32_precision
        conv.fp32_precision = "tf32" if enabled else "ieee"
        try:
            yield
        finally:
            conv.fp32_precision = old
    else:
        old = torch.backends.cudnn.allow_tf32
        torch.backends.cudnn.allow_tf32 = enabled
        try:
            yield
        finally:
            torch.backends.cudnn.allow_tf32 = old
