"""OMP hybrid precoding baseline (El Ayach Alg. 1 and 2, wideband)."""

import math

import pytest
import torch

from beamkernels.data import ChannelConfig, generate_channels
from beamkernels.metrics import mmse_combiner, omp_combiner, omp_precoder, omp_rate, spectral_efficiency, svd_bound


@pytest.fixture(scope="module")
def batch():
    return generate_channels(30, seed=0, dtype=torch.complex128)


def test_shapes_power_and_modulus(batch):
    F_RF, F_BB = omp_precoder(batch.Fopt, batch.At, 3)
    assert F_RF.shape == (30, 144, 3) and F_BB.shape == (30, 5, 3, 2)
    F = F_RF.unsqueeze(1) @ F_BB
    torch.testing.assert_close(torch.linalg.matrix_norm(F) ** 2, torch.full((30, 5), 2.0, dtype=torch.float64))
    torch.testing.assert_close(F_RF.abs(), torch.full_like(F_RF.abs(), 1 / math.sqrt(144)))
    # columns are dictionary entries (the true paths' a_t), all distinct
    match = (batch.At.conj() @ F_RF).abs()  # [30, L, 3]
    assert torch.allclose(match.max(1).values, torch.ones(30, 3, dtype=torch.float64))
    # unbatched input
    f_rf, f_bb = omp_precoder(batch.Fopt[0], batch.At[0], 3)
    torch.testing.assert_close(f_rf, F_RF[0])
    torch.testing.assert_close(f_bb, F_BB[0])
    W_RF, W_BB = omp_combiner(batch.Wopt, batch.Ar, 2)
    assert W_RF.shape == (30, 36, 2) and W_BB.shape == (30, 5, 2, 2)
    W_RF, W_BB = omp_combiner(None, batch.Ar, 2, H=batch.H, F=F, snr_db=0.0)
    assert W_RF.shape == (30, 36, 2) and W_BB.shape == (30, 5, 2, 2)
    torch.testing.assert_close(W_RF.abs(), torch.full_like(W_RF.abs(), 1 / 6))


def test_below_bound_and_closer_at_low_snr(batch):
    gaps = []
    for snr in (-10.0, 0.0, 10.0):
        r = omp_rate(batch.H, batch.Fopt, batch.At, batch.Ar, 2, snr, reduce="none")
        bound = svd_bound(batch.H, 2, snr, reduce="none")
        assert (r <= bound + 1e-9).all()
        assert r.mean() / bound.mean() > 0.75
        gaps.append((bound - r).mean().item())
    # El Ayach: the OMP gap (in bits/s/Hz) is smallest at low SNR
    assert gaps[0] < gaps[2]
    # more RF chains -> closer to the bound
    assert omp_rate(batch.H, batch.Fopt, batch.At, batch.Ar, 4, 0.0) > omp_rate(batch.H, batch.Fopt, batch.At, batch.Ar, 2, 0.0)


def test_single_path_is_optimal():
    cfg = ChannelConfig(Nc=1, Nray=1, Ns=1)
    b = generate_channels(5, cfg, seed=1, dtype=torch.complex128)
    for snr in (-10.0, 10.0):
        torch.testing.assert_close(omp_rate(b.H, b.Fopt, b.At, b.Ar, 1, snr, reduce="none"),
                                   svd_bound(b.H, 1, snr, reduce="none"), rtol=1e-9, atol=1e-9)


def test_fewer_paths_closer():
    ratios = []
    for nc, nray in ((1, 3), (5, 10)):
        b = generate_channels(20, ChannelConfig(Nc=nc, Nray=nray), seed=2, dtype=torch.complex128)
        ratios.append((omp_rate(b.H, b.Fopt, b.At, b.Ar, 2, 0.0) / svd_bound(b.H, 2, 0.0)).item())
    assert ratios[0] > ratios[1]


def test_combiner_variants(batch):
    F_RF, F_BB = omp_precoder(batch.Fopt, batch.At, 2)
    F = F_RF.unsqueeze(1) @ F_BB
    # Alg. 1 on Wopt and Alg. 2 (MMSE) both give sensible rates; MMSE-aware is at least as good on average
    W1 = (lambda rf_bb: rf_bb[0].unsqueeze(1) @ rf_bb[1])(omp_combiner(batch.Wopt, batch.Ar, 2))
    W2 = (lambda rf_bb: rf_bb[0].unsqueeze(1) @ rf_bb[1])(omp_combiner(None, batch.Ar, 2, H=batch.H, F=F, snr_db=0.0))
    r1 = spectral_efficiency(batch.H, F, W1, 0.0)
    r2 = spectral_efficiency(batch.H, F, W2, 0.0)
    assert r2 >= r1 - 0.05 and r1 > 0.7 * svd_bound(batch.H, 2, 0.0)
    # unconstrained MMSE combiner = optimal combiner for F (same rate as any basis of span(H F))
    Wm = mmse_combiner(batch.H, F, 0.0)
    torch.testing.assert_close(spectral_efficiency(batch.H, F, Wm, 0.0), spectral_efficiency(batch.H, F, batch.H @ F, 0.0))


def test_errors(batch):
    with pytest.raises(ValueError, match="n_rf"):
        omp_precoder(batch.Fopt, batch.At, 0)
    with pytest.raises(ValueError, match="At \\[B, L, Nt\\]"):
        omp_precoder(batch.Fopt, batch.Ar, 2)
    with pytest.raises(TypeError, match="complex"):
        omp_precoder(batch.Fopt.real, batch.At, 2)
    with pytest.raises(ValueError, match="needs H, F and snr_db"):
        omp_combiner(batch.Wopt, batch.Ar, 2, H=batch.H)
