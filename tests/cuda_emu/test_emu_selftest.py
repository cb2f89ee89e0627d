"""The emulator itself (tests/cuda_emu/selftest.cu): known results (warp-shuffle sums, a WMMA TF32
tile) and deliberate bugs that it must report (a missing __syncthreads seen by a thread schedule, a
barrier that only some threads reach, a bad launch configuration, __trap), and the rewriting of
launches in build.py. If these pass, a green test_emu_* means the CUDA code's logic was exercised."""

import pytest
import torch

from tests.cuda_emu import build
from tests.cuda_emu.helpers import tf32_round

EMPTY = torch.zeros(1)


def test_missing_syncthreads_is_caught_by_a_schedule(emu):
    x = torch.arange(256, dtype=torch.float32)
    wrong = 0
    for schedule in (0, 1, 2, 3):
        emu.configure(schedule=schedule, seed=7)
        out, err = emu.selftest("reverse", x, EMPTY, 1, 0)
        assert err == "" and torch.equal(out[:256], x.flip(0)), schedule  # with the barrier: always right
        y = x + 1000 * (schedule + 1)  # new values each time: a stale slot cannot look right
        out, err = emu.selftest("reverse", y, EMPTY, 0, 0)
        wrong += not torch.equal(out[:256], y.flip(0))
    emu.configure()
    assert wrong == 4  # without it, every schedule has a thread that reads a slot before it is written


def test_divergent_barrier_is_reported(emu):
    _, err = emu.selftest("divergent_sync", EMPTY, EMPTY, 0, 0)
    assert "deadlock" in err and "16 threads wait at __syncthreads" in err and "48 have exited" in err


@pytest.mark.parametrize("threads", [32, 96, 256])
def test_warp_shuffle_sums(emu, threads):
    out, err = emu.selftest("warp_sums", EMPTY, EMPTY, 3, threads)
    assert err == ""
    expected = torch.tensor([sum(range(32 * w, 32 * w + 32)) for w in range(threads // 32)], dtype=torch.float32)
    assert torch.equal(out[:3 * (threads // 32)], expected.repeat(3))


def test_wmma_tile_product(emu):
    a, b = torch.randn(16, 8), torch.randn(8, 16)
    exact = tf32_round(a.to(torch.complex64)).real.double() @ tf32_round(b.to(torch.complex64)).real.double()
    out, err = emu.selftest("wmma", a, b, 1, 0)
    assert err == ""
    torch.testing.assert_close(out[:256].view(16, 16).double(), exact, rtol=1e-6, atol=1e-6)
    # Without __float_to_tf32 the tensor cores truncate instead: a different (worse) product.
    out_t, _ = emu.selftest("wmma", a, b, 0, 0)
    assert not torch.equal(out_t[:256], out[:256])
    assert (out_t[:256].view(16, 16).double() - a.double() @ b.double()).abs().max() < 0.05


@pytest.mark.parametrize("grid_y,threads", [(1, 2048), (70000, 32), (0, 32), (1, 0)])
def test_bad_launch_configuration(emu, grid_y, threads):
    _, err = emu.selftest("launch_with", EMPTY, EMPTY, grid_y, threads)
    assert err.startswith("invalid configuration argument")


def test_launch_bounds_are_enforced(emu):
    out, err = emu.selftest("bounded", EMPTY, EMPTY, 64, 0)
    assert err == "" and torch.equal(out[:64], torch.ones(64))
    _, err = emu.selftest("bounded", EMPTY, EMPTY, 128, 0)
    assert err.startswith("too many resources requested for launch") and "__launch_bounds__(64)" in err


def test_trap_is_a_launch_failure(emu):
    _, err = emu.selftest("trap", EMPTY, EMPTY, 0, 0)
    assert "unspecified launch failure" in err and "__trap() reached" in err and "thread (3, 0, 0)" in err


def test_launch_rewrite():
    src = ("K<Activation::kNone, T><<<GRID, BLOCK, 0, STREAM>>>(P); break;\n"
           "k2<float><<<static_cast<unsigned>(b < 5 ? b : 5), 256, 0, s>>>(p, f(a, b));")
    out = build.rewrite_launches(src)
    assert out == ("::bk_emu::launch<&K<Activation::kNone, T>>(::bk_emu::LaunchCfg(GRID, BLOCK, 0, STREAM), P); break;\n"
                   "::bk_emu::launch<&k2<float>>(::bk_emu::LaunchCfg(static_cast<unsigned>(b < 5 ? b : 5), 256, 0, s), "
                   "p, f(a, b));")
    bounded = build.register_launch_bounds("namespace {\ntemplate <int A>\n__global__ void __launch_bounds__(kN, 2) kern(int p) {}")
    assert bounded == ("namespace {\n[[maybe_unused]] static const bool bk_emu_bound_kern = "
                       "::bk_emu::register_launch_bounds(\"kern\", kN);\ntemplate <int A>\n"
                       "__global__ void __launch_bounds__(kN, 2) kern(int p) {}")


def test_misaligned_wmma_tile_is_a_launch_failure(emu):
    """WMMA loads and stores need a 32-byte aligned pointer and ldm a multiple of 4 floats."""
    _, err = emu.selftest("misaligned_wmma", torch.randn(128), EMPTY, 0, 0)
    assert "wmma::load_matrix_sync: the pointer must be 32-byte aligned" in err and "4 bytes off" in err


def test_write_past_the_end_is_found(emu):
    """The allocation guard (conftest._poisoned_memory) sees a write just past a tensor's end."""
    emu.take_guard_violations()
    emu.poison_allocations(True)
    try:
        t = torch.empty(10)
        emu.write_past_end(t, 4)
        del t
    finally:
        emu.poison_allocations(False)
    v = emu.take_guard_violations()
    assert v == ["a write 0 bytes past the end of a 40-byte tensor"]
