"""Channel generator: statistics, structure, seeding, presets, SVD targets."""

import math

import numpy as np
import pytest
import scipy.stats
import torch

from beamkernels.data import ChannelConfig, generate_channels, optimal_precoders, truncated_laplace, upa_response
from beamkernels.metrics import spectral_efficiency, svd_bound


def test_config_defaults_and_presets():
    c = ChannelConfig()
    assert (c.Nt, c.Nr, c.Ns, c.K, c.Nc, c.Nray, c.angle_spread_deg) == (144, 36, 2, 5, 5, 10, 10.0)
    assert ChannelConfig.yu() == c
    e = ChannelConfig.el_ayach(64, 16)
    assert (e.tx_w, e.tx_h, e.rx_w, e.rx_h, e.Nc, e.Nray, e.angle_spread_deg) == (8, 8, 4, 4, 8, 10, 7.5)
    assert e.tx_az_sector_deg == (-30.0, 30.0) and e.tx_el_sector_deg == (80.0, 100.0)
    e2 = ChannelConfig.el_ayach(Nt=256, Nr=64)
    assert (e2.Nt, e2.Nr, e2.tx_w, e2.rx_w) == (256, 64, 16, 8)
    with pytest.raises(ValueError, match="perfect squares"):
        ChannelConfig.el_ayach(Nt=60, Nr=16)
    with pytest.raises(ValueError, match="'K' must be a positive int"):
        ChannelConfig(K=0)
    with pytest.raises(ValueError, match="Ns=40 exceeds"):
        ChannelConfig(Ns=40)
    with pytest.raises(ValueError, match="tx_az_sector_deg"):
        ChannelConfig(tx_az_sector_deg=(10.0, -10.0))


@pytest.mark.parametrize("cfg", [ChannelConfig(), ChannelConfig.el_ayach(64, 16), ChannelConfig.el_ayach(256, 64),
                                 ChannelConfig.el_ayach(64, 16, K=4)], ids=["yu", "elayach64x16", "elayach256x64", "elayach-K4"])
def test_shapes(cfg):
    b = generate_channels(3, cfg, seed=0)
    L = cfg.Nc * cfg.Nray
    assert b.H.shape == (3, cfg.K, cfg.Nr, cfg.Nt) and b.H.dtype == torch.complex64
    assert b.Fopt.shape == (3, cfg.K, cfg.Nt, cfg.Ns) and b.Wopt.shape == (3, cfg.K, cfg.Nr, cfg.Ns)
    assert b.At.shape == (3, L, cfg.Nt) and b.Ar.shape == (3, L, cfg.Nr)
    assert len(b) == 3 and len(b[1:]) == 2 and b[0].H.shape == (cfg.K, cfg.Nr, cfg.Nt)
    assert b.to(torch.complex128).H.dtype == torch.complex128


def test_mean_power_is_NtNr():
    # E||H[k]||_F^2 = Nt Nr. Tolerance: 5 standard errors of the sample mean (about 3 % here).
    cfg = ChannelConfig()
    H = generate_channels(2000, cfg, seed=123, dtype=torch.complex128, with_targets=False).H
    p = (H.abs() ** 2).sum((-2, -1))  # [n, K]
    for k in range(cfg.K):
        m, se = p[:, k].mean().item(), p[:, k].std().item() / math.sqrt(p.shape[0])
        assert abs(m - cfg.Nt * cfg.Nr) < 5 * se, (k, m, se)
        assert abs(m / (cfg.Nt * cfg.Nr) - 1) < 0.05


def test_each_subcarrier_has_the_narrowband_distribution():
    cfg = ChannelConfig()
    wide = generate_channels(1000, cfg, seed=1, dtype=torch.complex128, with_targets=False).H
    narrow = generate_channels(1000, cfg.replace(K=1), seed=2, dtype=torch.complex128, with_targets=False).H[:, 0]
    pn = (narrow.abs() ** 2).sum((-2, -1)).numpy()
    for k in range(cfg.K):
        # every entry of H[k] is exactly CN(0, 1): |h|^2 ~ Exp(1) (one entry per sample: i.i.d.)
        e = (wide[:, k, 3, 7].abs() ** 2).numpy()
        assert scipy.stats.kstest(e, "expon").pvalue > 1e-3
        # and ||H[k]||_F^2 has the same law as a narrowband channel's
        pk = (wide[:, k].abs() ** 2).sum((-2, -1)).numpy()
        assert scipy.stats.ks_2samp(pk, pn).pvalue > 1e-3, k


def test_cluster_c_is_tap_c():
    # Inverse DFT over k gives back each cluster's narrowband matrix, which must be a combination of
    # that cluster's own rank-1 path terms a_r a_t^H only.
    cfg = ChannelConfig(tx_w=4, tx_h=3, rx_w=3, rx_h=2, K=5, Nc=5, Nray=2)
    b = generate_channels(2, cfg, seed=5, dtype=torch.complex128)
    K = cfg.K
    k = torch.arange(K, dtype=torch.float64)
    for c in range(cfg.Nc):
        w = torch.exp(2j * math.pi * k * c / K).to(torch.complex128)
        Hc = (b.H * w[:, None, None]).sum(1) / K  # [n, Nr, Nt]
        for i in range(2):
            cols = []
            for l in range(c * cfg.Nray, (c + 1) * cfg.Nray):
                cols.append(torch.outer(b.Ar[i, l], b.At[i, l].conj()).reshape(-1))
            A = torch.stack(cols, 1)
            x = torch.linalg.lstsq(A, Hc[i].reshape(-1, 1)).solution
            res = (A @ x - Hc[i].reshape(-1, 1)).norm() / Hc[i].norm()
            assert res < 1e-10, (c, i, res.item())


def test_array_response():
    b = generate_channels(4, seed=0, dtype=torch.complex128)
    torch.testing.assert_close(b.At.norm(dim=-1), torch.ones(4, 50, dtype=torch.float64))
    torch.testing.assert_close(b.Ar.abs(), torch.full_like(b.Ar.abs(), 1 / 6))
    torch.testing.assert_close(b.At.abs(), torch.full_like(b.At.abs(), 1 / 12))
    # layout: index m*H + n, m the slow index
    az, el, W, Hh = 0.7, 1.1, 3, 4
    a = upa_response(torch.tensor(az, dtype=torch.float64), torch.tensor(el, dtype=torch.float64), W, Hh).numpy()
    ref = np.array([np.exp(1j * np.pi * (m * np.sin(az) * np.sin(el) + n * np.cos(el)))
                    for m in range(W) for n in range(Hh)]) / np.sqrt(W * Hh)
    np.testing.assert_allclose(a, ref, rtol=1e-12, atol=1e-12)


def test_truncated_laplace():
    g = torch.Generator().manual_seed(0)
    x = truncated_laplace((200000,), 10.0, math.pi, g)  # huge scale: truncation is active
    assert x.abs().max() <= math.pi and x.abs().max() > 3.0
    sigma = math.radians(10.0)
    y = truncated_laplace((200000,), sigma / math.sqrt(2), math.pi, g)
    assert abs(y.std().item() / sigma - 1) < 0.02  # Laplace std = b sqrt(2) = sigma
    # exact truncated law: CDF of Laplace(0, b) restricted to (-1, 1), b = 1
    z = truncated_laplace((5000,), 1.0, 1.0, g).numpy()
    lo = 0.5 * math.exp(-1.0)
    cdf = lambda t: (np.where(t < 0, 0.5 * np.exp(t), 1 - 0.5 * np.exp(-t)) - lo) / (1 - 2 * lo)
    assert scipy.stats.kstest(z, cdf).pvalue > 1e-3


def test_sector():
    cfg = ChannelConfig.el_ayach(64, 16, angle_spread_deg=0.0)
    b = generate_channels(50, cfg, seed=3, dtype=torch.complex128)
    a = b.At.reshape(50, -1, 8, 8)
    v = torch.angle(a[..., 0, 1] / a[..., 0, 0]) / math.pi  # cos(el)
    u = torch.angle(a[..., 1, 0] / a[..., 0, 0]) / math.pi  # sin(az) sin(el)
    assert v.abs().max() <= math.cos(math.radians(80)) + 1e-9
    assert u.abs().max() <= math.sin(math.radians(30)) + 1e-9
    # the receive side is not restricted: it leaves that sector
    ar = b.Ar.reshape(50, -1, 4, 4)
    assert (torch.angle(ar[..., 0, 1] / ar[..., 0, 0]) / math.pi).abs().max() > 0.5


def test_seeding():
    a = generate_channels(3, seed=7)
    b = generate_channels(3, seed=7)
    c = generate_channels(3, seed=8)
    assert torch.equal(a.H, b.H) and torch.equal(a.At, b.At)
    assert not torch.allclose(a.H, c.H)
    g1, g2 = torch.Generator().manual_seed(4), torch.Generator().manual_seed(4)
    assert torch.equal(generate_channels(2, generator=g1).H, generate_channels(2, generator=g2).H)
    torch.manual_seed(11)
    d = generate_channels(2)
    torch.manual_seed(11)
    assert torch.equal(d.H, generate_channels(2).H)
    with pytest.raises(ValueError, match="either seed or generator"):
        generate_channels(2, seed=1, generator=g1)
    with pytest.raises(TypeError, match="complex64 or torch.complex128"):
        generate_channels(2, seed=1, dtype=torch.float32)
    assert generate_channels(0, seed=1).H.shape[0] == 0


def test_svd_targets():
    cfg = ChannelConfig()
    b = generate_channels(8, cfg, seed=0, dtype=torch.complex128)
    torch.testing.assert_close(torch.linalg.matrix_norm(b.Fopt) ** 2, torch.full((8, cfg.K), 2.0, dtype=torch.float64))
    for snr in (-10.0, 0.0, 10.0):
        torch.testing.assert_close(spectral_efficiency(b.H, b.Fopt, b.Wopt, snr, reduce="none"),
                                   svd_bound(b.H, cfg.Ns, snr, reduce="none"), rtol=1e-10, atol=1e-10)
    D = b.Wopt.mH @ b.H @ b.Fopt  # = diag(s_1, s_2)
    s = torch.linalg.svdvals(b.H)[..., :2]
    torch.testing.assert_close(D, torch.diag_embed(s).to(D.dtype), rtol=1e-9, atol=1e-9)
    F, W = optimal_precoders(b.H[0, 0], 1)
    assert F.shape == (144, 1) and W.shape == (36, 1)
    with pytest.raises(TypeError, match="complex"):
        optimal_precoders(b.H.real, 2)
    with pytest.raises(ValueError, match="Ns"):
        optimal_precoders(b.H, 37)
