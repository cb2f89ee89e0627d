"""Shared test helpers: tolerances per dtype, input factories, a verbose assert_close, and the
per-op checks every op family runs (forward vs reference, gradients vs reference, gradcheck,
opcheck, torch.compile)."""

from __future__ import annotations

import os
from typing import Callable, Sequence

import pytest
import torch

import beamkernels

# Tolerances per dtype for kernel-vs-reference comparisons (elementwise ops; reductions and
# GEMMs declare their own in their test files, scaled to their accumulation length).
TOL = {
    torch.complex64: dict(rtol=1e-5, atol=1e-5),
    torch.complex128: dict(rtol=1e-12, atol=1e-12),
    torch.float32: dict(rtol=1e-5, atol=1e-5),
    torch.float64: dict(rtol=1e-12, atol=1e-12),
}

INTERPRETED_TRITON = os.environ.get("TRITON_INTERPRET", "0") == "1"

# Known limitation (shared/conventions.md): under TRITON_INTERPRET=1 a triton_op's fake-tensor
# path runs the kernel on fake tensors and fails, so opcheck's faketensor/aot tests and
# torch.compile cannot pass in the interpreter. They run on a GPU.
SKIP_TRITON_FAKE = "triton_op fake-tensor tracing cannot run under TRITON_INTERPRET=1; runs on a GPU"


def crandn(*shape, dtype=torch.complex64, device="cpu", requires_grad=False) -> torch.Tensor:
    x = torch.randn(*shape, dtype=dtype, device=device)
    return x.requires_grad_(requires_grad)


def strided(x: torch.Tensor) -> torch.Tensor:
    """A non-contiguous view with the same values pattern: every other element of the last dim
    of a twice-as-wide tensor."""
    wide = torch.randn(*x.shape[:-1], 2 * x.shape[-1], dtype=x.dtype, device=x.device)
    v = wide[..., ::2]
    with torch.no_grad():
        v.copy_(x)
    assert not v.is_contiguous() or v.numel() <= 1
    return v


def assert_close(actual, expected, *, dtype=None, msg: str = "", **tol) -> None:
    """torch.testing.assert_close with the per-dtype tolerances and the worst element reported."""
    dtype = dtype or expected.dtype
    kw = dict(TOL.get(dtype, {}))
    kw.update(tol)
    try:
        torch.testing.assert_close(actual, expected, **kw)
    except AssertionError as e:
        diff = (actual - expected).abs()
        idx = torch.unravel_index(diff.argmax(), diff.shape) if diff.numel() else ()
        raise AssertionError(
            f"{msg}\nworst element at {tuple(int(i) for i in idx)}: actual={actual[idx].item()} "
            f"expected={expected[idx].item()}\n{e}"
        ) from None


def run_on(backend: str, fn: Callable, *args, **kwargs):
    with beamkernels.use_backend(backend):
        return fn(*args, **kwargs)


def check_forward_backward(backend: str, fn: Callable, ref: Callable, inputs: Sequence[torch.Tensor],
                           dtype=torch.complex64, **tol) -> None:
    """Forward and all input gradients of `fn` under `backend` match the reference's autograd."""
    a = [t.detach().clone().requires_grad_(t.requires_grad) for t in inputs]
    b = [t.detach().clone().requires_grad_(t.requires_grad) for t in inputs]
    y = run_on(backend, fn, *a)
    y_ref = ref(*b)
    assert_close(y, y_ref, dtype=dtype, msg=f"forward ({backend})", **tol)
    g = torch.randn_like(y_ref)
    grads = torch.autograd.grad(y, [t for t in a if t.requires_grad], g, allow_unused=False)
    grads_ref = torch.autograd.grad(y_ref, [t for t in b if t.requires_grad], g)
    for i, (gi, gr) in enumerate(zip(grads, grads_ref)):
        assert_close(gi, gr, dtype=gr.dtype, msg=f"gradient of input {i} ({backend})", **tol)


def gradcheck(backend: str, fn: Callable, inputs: Sequence[torch.Tensor], **kw) -> None:
    with beamkernels.use_backend(backend):
        assert torch.autograd.gradcheck(fn, tuple(inputs), **kw)


def opcheck(op, args: tuple, backend: str) -> None:
    """torch.library.opcheck on a registered op; for interpreted Triton only the schema and
    autograd registration checks (see SKIP_TRITON_FAKE)."""
    if backend == "triton" and INTERPRETED_TRITON:
        tests = ("test_schema", "test_autograd_registration")
    else:
        tests = ("test_schema", "test_autograd_registration", "test_faketensor", "test_aot_dispatch_dynamic")
    torch.library.opcheck(op, args, test_utils=tests)


def skip_compile_if_interpreted(backend: str) -> None:
    if backend == "triton" and INTERPRETED_TRITON:
        pytest.skip(SKIP_TRITON_FAKE)
