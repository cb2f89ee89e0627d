"""Losses: element MSE, subspace (chordal) distance, projector MSE, -R."""

import pytest
import torch

from beamkernels.data import generate_channels
from beamkernels.losses import element_mse, neg_rate_loss, projector_mse, subspace_loss
from beamkernels.metrics import spectral_efficiency


def crandn(*s, dtype=torch.complex128, requires_grad=False):
    return torch.randn(*s, dtype=dtype).requires_grad_(requires_grad)


@pytest.fixture(scope="module")
def batch():
    return generate_channels(4, seed=3, dtype=torch.complex128)


def test_subspace_loss_invariance(batch):
    F = batch.Fopt
    phase = torch.exp(1j * torch.rand(4, 5, 1, 2, dtype=torch.float64) * 6.28)
    assert subspace_loss(F * phase, F).abs() < 1e-12
    Q = torch.linalg.qr(crandn(4, 5, 2, 2)).Q
    assert subspace_loss(2.5 * F @ Q, F).abs() < 1e-12  # any basis, any scale
    r = subspace_loss(crandn(4, 5, 144, 2), F)
    assert 0 < r < 2
    # against the QR formula
    Fh = crandn(4, 5, 144, 2)
    Qh = torch.linalg.qr(Fh).Q
    ref = (2 - torch.linalg.matrix_norm(F.mH @ Qh) ** 2).mean()
    torch.testing.assert_close(subspace_loss(Fh, F), ref)
    # a single wrong column is detected
    G = F.clone()
    G[..., 1] = batch.Fopt.roll(1, dims=1)[..., 1]
    assert subspace_loss(G, F) > 0.01


def test_projector_mse(batch):
    F = batch.Fopt
    phase = torch.exp(1j * torch.rand(4, 5, 1, 2, dtype=torch.float64) * 6.28)
    assert projector_mse(3 * F * phase, F).abs() < 1e-10
    Fh = crandn(4, 5, 144, 2)
    Fn = Fh * (2 ** 0.5 / torch.linalg.matrix_norm(Fh))[..., None, None]
    ref = (torch.linalg.matrix_norm(F @ F.mH - Fn @ Fn.mH) ** 2).mean()
    torch.testing.assert_close(projector_mse(Fh, F), ref)
    ref_raw = (torch.linalg.matrix_norm(F @ F.mH - Fh @ Fh.mH) ** 2).mean()
    torch.testing.assert_close(projector_mse(Fh, F, normalize=False), ref_raw)


def test_element_mse_and_neg_rate(batch):
    a, b = crandn(3, 5, 6, 2), crandn(3, 5, 6, 2)
    torch.testing.assert_close(element_mse(a, b), torch.nn.functional.mse_loss(torch.view_as_real(a), torch.view_as_real(b)))
    x, y = torch.randn(4, 3), torch.randn(4, 3)
    torch.testing.assert_close(element_mse(x, y), torch.nn.functional.mse_loss(x, y))
    # the phase ambiguity gives element MSE a floor that the subspace loss does not have
    assert element_mse(-batch.Fopt, batch.Fopt) > 0.001
    torch.testing.assert_close(neg_rate_loss(batch.H, batch.Fopt, batch.Wopt, 5.0),
                               -spectral_efficiency(batch.H, batch.Fopt, batch.Wopt, 5.0))
    with pytest.raises(ValueError, match="same shape"):
        element_mse(a, b[:2])
    with pytest.raises(TypeError, match="complex"):
        subspace_loss(a.real, b.real)


@pytest.mark.parametrize("loss", [element_mse, subspace_loss, projector_mse], ids=lambda f: f.__name__)
def test_gradcheck(loss):
    F_opt = torch.linalg.qr(crandn(2, 3, 5, 2)).Q
    F_hat = crandn(2, 3, 5, 2, requires_grad=True)
    assert torch.autograd.gradcheck(lambda f: loss(f, F_opt), (F_hat,))


def test_gradcheck_neg_rate():
    H = crandn(2, 4, 5)
    F, W = crandn(2, 5, 2, requires_grad=True), crandn(2, 4, 2, requires_grad=True)
    assert torch.autograd.gradcheck(lambda f, w: neg_rate_loss(H, f, w, 0.0), (F, W))


def test_gradient_step_improves_rate(batch):
    F = crandn(4, 5, 144, 2, requires_grad=True)
    opt = torch.optim.Adam([F], lr=0.05)
    start = -neg_rate_loss(batch.H, F, batch.Wopt, 10.0).item()
    for _ in range(30):
        opt.zero_grad()
        loss = neg_rate_loss(batch.H, F, batch.Wopt, 10.0)
        loss.backward()
        opt.step()
    assert -loss.item() > start + 1.0
