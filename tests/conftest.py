"""Test setup: Triton runs in its interpreter when there is no GPU (must be set before any
import of triton), seeds, and the `backend` fixture over every backend that runs here."""

import os

import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

import pytest  # noqa: E402

import beamkernels  # noqa: E402


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    yield


def _backend_params():
    params = []
    for b in ("reference", "cpu", "cuda", "triton"):
        runs = b in beamkernels.available_backends()
        params.append(pytest.param(b, marks=() if runs else pytest.mark.skip(reason=f"backend '{b}' cannot run here")))
    return params


@pytest.fixture(params=_backend_params())
def backend(request):
    """Each backend that can run here. The device follows the backend (cpu/triton-interpreter on
    the CPU, cuda/triton on the GPU when there is one)."""
    return request.param


@pytest.fixture
def device(backend):
    if backend == "cuda" or (backend == "triton" and torch.cuda.is_available()):
        return torch.device("cuda")
    return torch.device("cpu")
