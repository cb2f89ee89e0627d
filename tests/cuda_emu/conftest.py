"""The CUDA kernels and their torch glue, built for the CPU emulator (build.py) and registered
as torch.ops.beamkernels_cuda_emu.* with the package's own fake kernels and autograd. Built once
per session (about a minute on 2 cores; ninja reuses it while nothing changed)."""

import gc
import shutil

import pytest
import torch

from tests.cuda_emu import build


@pytest.fixture(scope="session")
def emu():
    if shutil.which("c++") is None and shutil.which("g++") is None:
        pytest.skip("no C++ compiler to build the CUDA emulator")
    module = build.load()
    from beamkernels.ops import activation, conv, norm, pool

    conv.register_compiled_conv(build.NAMESPACE)
    activation.register_compiled_activations(build.NAMESPACE)
    norm.register_compiled_norm(build.NAMESPACE)
    pool.register_compiled_pool(build.NAMESPACE)
    module.configure()
    yield module
    module.configure()


@pytest.fixture(autouse=True)
def _poisoned_memory(request):
    """While an emulator test runs, every new CPU tensor starts as NaN bytes (outputs or buffers a
    kernel forgets to write show up) and ends in a guard zone that must be intact when it is freed
    (writes past its end fail the test); __shared__ arrays start as NaN in every block."""
    if "emu" not in request.fixturenames and "E" not in request.fixturenames:
        yield
        return
    module = request.getfixturevalue("emu")
    module.take_guard_violations()
    module.poison_allocations(True)
    try:
        yield
    finally:
        module.poison_allocations(False)
    gc.collect()  # free what the test allocated, so that its guard zones are checked
    violations = module.take_guard_violations()
    assert not violations, f"writes past the end of tensors: {violations[:5]}"


@pytest.fixture
def E(emu):
    """The emulated ops: torch.ops.beamkernels_cuda_emu."""
    return getattr(torch.ops, build.NAMESPACE)


@pytest.fixture
def launched(emu):
    """launched() -> the kernels launched since the previous call (or the test's start), by short
    name (namespaces and template arguments stripped)."""
    emu.clear_launches()

    def names() -> list[str]:
        out = [n.split("<")[0].split("::")[-1] for n in emu.launches()]
        emu.clear_launches()
        return out

    return names
