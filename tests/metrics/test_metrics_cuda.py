"""The same tools on a CUDA device (runs only where there is one)."""

import pytest
import torch

from beamkernels.data import ChannelConfig, generate_channels
from beamkernels.losses import neg_rate_loss, projector_mse, subspace_loss
from beamkernels.metrics import omp_rate, spectral_efficiency, svd_bound

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]


def test_cuda_matches_cpu():
    cpu = generate_channels(8, ChannelConfig(), seed=0, dtype=torch.complex128)
    gpu = generate_channels(8, ChannelConfig(), seed=0, dtype=torch.complex128, device="cuda")
    assert gpu.H.is_cuda and torch.equal(gpu.H.cpu(), cpu.H)
    for s in (-10.0, 10.0):
        torch.testing.assert_close(spectral_efficiency(gpu.H, gpu.Fopt, gpu.Wopt, s).cpu(), svd_bound(cpu.H, 2, s))
        torch.testing.assert_close(omp_rate(gpu.H, gpu.Fopt, gpu.At, gpu.Ar, 2, s).cpu(),
                                   omp_rate(cpu.H, cpu.Fopt, cpu.At, cpu.Ar, 2, s))
    F = torch.randn(8, 5, 144, 2, dtype=torch.complex64, device="cuda", requires_grad=True)
    g = gpu.to(dtype=torch.complex64)
    (subspace_loss(F, g.Fopt) + projector_mse(F, g.Fopt) + neg_rate_loss(g.H, F, g.Wopt, 0.0)).backward()
    assert torch.isfinite(torch.view_as_real(F.grad)).all()
