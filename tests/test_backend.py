"""Backend selection: auto, explicit choices, the environment variable, clear errors."""

import os
import subprocess
import sys

import pytest
import torch

import beamkernels
from beamkernels import _backend

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_available_backends_lists_reference_and_is_consistent():
    avail = beamkernels.available_backends()
    assert avail[0] == "reference"
    assert set(avail) <= set(_backend.BACKENDS)
    assert beamkernels.available_backends("cpu") == [b for b in avail if b != "cuda"] or not torch.cuda.is_available()


def test_use_backend_nesting_and_restore():
    assert beamkernels.current_backend() in ("auto",) + _backend.BACKENDS
    before = beamkernels.current_backend()
    with beamkernels.use_backend("reference"):
        assert beamkernels.current_backend() == "reference"
        with beamkernels.use_backend("auto"):
            assert beamkernels.current_backend() == "auto"
        assert beamkernels.current_backend() == "reference"
    assert beamkernels.current_backend() == before


def test_use_backend_rejects_unknown_name():
    with pytest.raises(ValueError, match="use_backend: name must be one of auto, reference, cpu, cuda, triton; got 'cudnn'"):
        with beamkernels.use_backend("cudnn"):
            pass


def test_auto_picks_compiled_cpu_when_built():
    dev = torch.device("cpu")
    expected = "cpu" if "cpu" in beamkernels.available_backends() else "reference"
    assert _backend.resolve("crelu", dev) == expected
    assert _backend.resolve("crelu", dev, implemented=("reference", "triton")) == "reference"


def test_explicit_backend_that_cannot_run_is_an_error():
    x = torch.randn(3, dtype=torch.complex64)
    if not torch.cuda.is_available():
        with beamkernels.use_backend("cuda"):
            with pytest.raises(RuntimeError, match="backend 'cuda' cannot run here: the 'cuda' backend runs on CUDA tensors, got a tensor on cpu"):
                beamkernels.functional.crelu(x)


def test_explicit_backend_not_implemented_for_op():
    with beamkernels.use_backend("triton"):
        with pytest.raises(NotImplementedError, match=r"the 'triton' backend has no kernel for this op \(implemented: reference, cpu\)"):
            _backend.resolve("some_op", torch.device("cpu"), implemented=("reference", "cpu"))


def test_env_var_selects_backend_and_rejects_bad_values():
    code = "import beamkernels; print(beamkernels.current_backend())"
    env = {**os.environ, "PYTHONPATH": ROOT, "BEAMKERNELS_BACKEND": "reference"}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert r.returncode == 0 and r.stdout.strip() == "reference", r.stderr[-2000:]
    env["BEAMKERNELS_BACKEND"] = "gpu"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert r.returncode != 0 and "BEAMKERNELS_BACKEND must be one of auto, reference, cpu, cuda, triton; got 'gpu'" in r.stderr
