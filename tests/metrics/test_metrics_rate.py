"""Spectral efficiency, SVD bound, SNR sweeps."""

import numpy as np
import pytest
import torch

from beamkernels.data import generate_channels
from beamkernels.metrics import se_vs_snr, snr_sweep, spectral_efficiency, svd_bound


def crandn(*s, dtype=torch.complex128, requires_grad=False):
    return torch.randn(*s, dtype=dtype).requires_grad_(requires_grad)


def np_rate(H, F, W, snr_db):
    """Direct evaluation of El Ayach eq. 7 in numpy (the literal formula)."""
    rho = 10 ** (snr_db / 10)
    Ns = F.shape[-1]
    F = F * np.sqrt(Ns) / np.linalg.norm(F)
    Wh = W.conj().T
    M = np.eye(Ns) + rho / Ns * np.linalg.inv(Wh @ W) @ Wh @ H @ F @ F.conj().T @ H.conj().T @ W
    return np.log2(np.linalg.det(M)).real


@pytest.mark.parametrize("snr_db", [-10.0, 0.0, 13.0])
def test_against_numpy(snr_db):
    H, F, W = crandn(3, 4, 6, 9), crandn(3, 4, 9, 2), crandn(3, 4, 6, 2)
    r = spectral_efficiency(H, F, W, snr_db, reduce="none")
    assert r.shape == (3, 4) and r.dtype == torch.float64
    ref = np.array([[np_rate(H[i, k].numpy(), F[i, k].numpy(), W[i, k].numpy(), snr_db) for k in range(4)] for i in range(3)])
    np.testing.assert_allclose(r.numpy(), ref, rtol=1e-10)
    torch.testing.assert_close(spectral_efficiency(H, F, W, snr_db), r.mean())
    r64 = spectral_efficiency(H.to(torch.complex64), F.to(torch.complex64), W.to(torch.complex64), snr_db, reduce="none")
    assert r64.dtype == torch.float32
    np.testing.assert_allclose(r64.numpy(), ref, rtol=1e-4)


def test_invariances():
    H, F, W = crandn(2, 3, 6, 9), crandn(2, 3, 9, 2), crandn(2, 3, 6, 2)
    r = spectral_efficiency(H, F, W, 5.0, reduce="none")
    phase = torch.exp(1j * torch.rand(2, 3, 1, 2, dtype=torch.float64) * 6.28)
    torch.testing.assert_close(spectral_efficiency(H, F * phase, W, 5.0, reduce="none"), r)  # column phases of F
    torch.testing.assert_close(spectral_efficiency(H, 3.7 * F, W, 5.0, reduce="none"), r)  # power normalized inside
    Q = torch.linalg.qr(crandn(2, 3, 2, 2)).Q
    torch.testing.assert_close(spectral_efficiency(H, F @ Q, W, 5.0, reduce="none"), r)  # unitary mix of streams
    A = crandn(2, 3, 2, 2)  # W enters only through its span
    torch.testing.assert_close(spectral_efficiency(H, F, W @ A, 5.0, reduce="none"), r)


def test_bound_dominates():
    b = generate_channels(6, seed=2, dtype=torch.complex128)
    for snr in (-10.0, 0.0, 10.0):
        bound = svd_bound(b.H, 2, snr, reduce="none")
        for _ in range(3):
            F = torch.linalg.qr(crandn(6, 5, 144, 2)).Q
            W = torch.linalg.qr(crandn(6, 5, 36, 2)).Q
            assert (spectral_efficiency(b.H, F, W, snr, reduce="none") <= bound + 1e-9).all()
        # closed form by hand
        s = torch.linalg.svdvals(b.H)[..., :2]
        torch.testing.assert_close(bound, torch.log2(1 + 10 ** (snr / 10) / 2 * s ** 2).sum(-1))


def test_gradients():
    H, F, W = crandn(2, 3, 4), crandn(2, 4, 2, requires_grad=True), crandn(2, 3, 2, requires_grad=True)
    assert torch.autograd.gradcheck(lambda F, W: spectral_efficiency(H, F, W, 3.0), (F, W))
    F32 = crandn(2, 5, 144, 2, dtype=torch.complex64).requires_grad_()
    b = generate_channels(2, seed=0)
    spectral_efficiency(b.H, F32, b.Wopt, 10.0).backward()
    assert torch.isfinite(torch.view_as_real(F32.grad)).all()


def test_sweeps():
    b = generate_channels(3, seed=1, dtype=torch.complex128)
    snrs = [-10.0, 0.0, 10.0]
    s = snr_sweep(b.H, b.Fopt, b.Wopt, snrs)
    assert s.shape == (3,) and (s.diff() > 0).all()
    torch.testing.assert_close(s, torch.stack([svd_bound(b.H, 2, x) for x in snrs]))
    assert snr_sweep(b.H, b.Fopt, b.Wopt, snrs, reduce="none").shape == (3, 3, 5)
    torch.testing.assert_close(se_vs_snr(lambda snr: (b.Fopt, b.Wopt), b.H, snrs), s)
    torch.testing.assert_close(se_vs_snr(b.Fopt, b.H, snrs, W=b.Wopt), s)


def test_errors():
    H, F, W = crandn(2, 6, 9), crandn(2, 9, 2), crandn(2, 6, 2)
    with pytest.raises(TypeError, match="'F' must be a complex tensor"):
        spectral_efficiency(H, F.real, W)
    with pytest.raises(ValueError, match="shapes do not match"):
        spectral_efficiency(H, crandn(2, 8, 2), W)
    with pytest.raises(ValueError, match="leading dims"):
        spectral_efficiency(crandn(3, 6, 9), F, W)
    with pytest.raises(ValueError, match="reduce must be"):
        spectral_efficiency(H, F, W, reduce="sum")
    with pytest.raises(ValueError, match="W\\^H W is singular"):
        spectral_efficiency(H, F, torch.zeros_like(W))
    with pytest.raises(ValueError, match="Ns"):
        svd_bound(H, 7)
