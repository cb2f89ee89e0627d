"""The model zoo: registry, shapes, output normalizations, documented parameter counts,
forward + backward with finite gradients, and the architectural facts the brief fixes (the
complex CNN's flatten size, the U-Net's skip concatenations, the real model's |H|-only input)."""

from __future__ import annotations

import pytest
import torch

import beamkernels.models as zoo
from beamkernels.models import ComplexUNet, ComplexUnfolded, ThesisComplexCNN

NAMES = ["thesis-real-encoder", "thesis-complex-cnn", "complex-unet", "complex-resnet", "complex-unfolded"]
# Tiny configs: the tests check structure and numerics, not capacity.
TINY = {
    "thesis-real-encoder": dict(width=2),
    "thesis-complex-cnn": dict(width=2, hidden=16),
    "complex-unet": dict(width=2),
    "complex-resnet": dict(width=2, hidden=16),
    "complex-unfolded": dict(width=2, hidden=16, iterations=2),
}
K, Nr, Nt, Ns = 5, 36, 144, 2


def _H(B=2, K=K, Nr=Nr, Nt=Nt, dtype=torch.complex64):
    return torch.randn(B, K, Nr, Nt, dtype=dtype)


def test_registry_lists_every_model():
    assert zoo.list_models() == sorted(NAMES)


def test_unknown_model_and_bad_config_are_clear_errors():
    with pytest.raises(KeyError, match="unknown model 'nope'; available: complex-resnet"):
        zoo.create("nope")
    with pytest.raises(TypeError, match="Config keys: .*width"):
        zoo.create("complex-unet", widht=4)
    with pytest.raises(ValueError, match="activation must be one of"):
        zoo.create("thesis-complex-cnn", activation="relu")


@pytest.mark.parametrize("name", NAMES)
def test_shapes_normalizations_and_gradients(name):
    model = zoo.create(name, **TINY[name])
    H = _H()
    F, W = model(H)
    assert F.shape == (2, K, Nt, Ns) and W.shape == (2, K, Nr, Ns)
    assert F.is_complex() and W.is_complex()
    power = F.abs().square().sum(dim=(-2, -1))
    torch.testing.assert_close(power, torch.full_like(power, Ns), rtol=1e-5, atol=1e-5)
    cols = W.abs().square().sum(dim=-2)
    torch.testing.assert_close(cols, torch.ones_like(cols), rtol=1e-5, atol=1e-5)
    loss = -(W.mH @ H @ F).abs().square().sum()  # any real function of both outputs
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None for g in grads), "a parameter got no gradient"
    assert all(torch.isfinite(torch.view_as_real(g) if g.is_complex() else g).all() for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)


@pytest.mark.parametrize("name", NAMES)
def test_documented_parameter_count(name):
    info = zoo.model_info(name)
    assert info["parameters"] == info["documented_parameters"], (
        f"{name}: the docstring/DOCUMENTED_PARAMS says {info['documented_parameters']:,}, the model has "
        f"{info['parameters']:,}")
    assert f"{info['parameters']:,}" in type(zoo.create(name)).__doc__
    assert info["input"]["H"] == [None, K, Nr, Nt] and info["output"]["F"] == [None, K, Nt, Ns]


@pytest.mark.parametrize("name", NAMES)
def test_other_antenna_setting_and_eval_mode(name):
    # El Ayach's 64x16, narrowband (K = 1).
    model = zoo.create(name, K=1, Nr=16, Nt=64, **TINY[name]).eval()
    with torch.no_grad():
        F, W = model(_H(B=3, K=1, Nr=16, Nt=64))
    assert F.shape == (3, 1, 64, 2) and W.shape == (3, 1, 16, 2)


@pytest.mark.parametrize("name", NAMES)
def test_rejects_bad_input(name):
    model = zoo.create(name, **TINY[name])
    with pytest.raises(TypeError, match="H must be a complex tensor"):
        model(torch.randn(2, K, Nr, Nt))
    with pytest.raises(ValueError, match=r"H must have shape \[B, 5, 36, 144\]"):
        model(_H(Nt=100))


def test_thesis_complex_cnn_flatten_size_is_the_pooled_map():
    m = ThesisComplexCNN()
    assert m.flat_features == 64 * 4 * 18
    assert m.fc.in_features == 64 * 4 * 18
    feats = m.features(_H(B=1))
    assert feats.shape == (1, 64, 4, 18)


def test_complex_unet_concatenates_skips():
    m = ComplexUNet(width=4)
    seen = []
    hooks = [up.conv.register_forward_pre_hook(lambda mod, args: seen.append(args[0].shape[1])) for up in m.up]
    m(_H(B=1))
    for h in hooks:
        h.remove()
    # decoder inputs = skip channels + upsampled channels: (16 + 16), (8 + 8), (4 + 4)
    assert seen == [32, 16, 8]
    assert [up.in_channels_after_concat for up in m.up] == [32, 16, 8]
    assert [up.conv[0].conv.in_channels for up in m.up] == [32, 16, 8]


def test_real_encoder_sees_only_the_magnitude():
    """|H| = |conj(H)|, so the real model must give the same F for both (the domain's limit):
    its precoder is conj-blind while the optimal ones differ."""
    torch.manual_seed(1)
    m = zoo.create("thesis-real-encoder", width=2).eval()
    H = _H(B=2)
    with torch.no_grad():
        F1, _ = m(H)
        F2, _ = m(H.conj())
    torch.testing.assert_close(F1, F2)
    assert (F1.imag == 0).all()


def test_matched_combiner_spans_HF():
    H, F = _H(B=2), zoo.normalize_precoder(torch.randn(2, K, Nt, Ns, dtype=torch.complex64))
    W = zoo.matched_combiner(H, F)
    torch.testing.assert_close(W.mH @ W, torch.eye(Ns, dtype=W.dtype).expand(2, K, Ns, Ns), rtol=1e-5, atol=1e-5)
    HF = H @ F
    torch.testing.assert_close(W @ (W.mH @ HF), HF, rtol=1e-4, atol=1e-3)  # HF lies in span(W)


@pytest.mark.parametrize("name", ["thesis-complex-cnn", "complex-unet", "complex-resnet"])
def test_matched_combiner_option(name):
    head = zoo.create(name, **TINY[name])
    m = zoo.create(name, combiner="matched", **TINY[name])
    assert zoo.count_parameters(m) < zoo.count_parameters(head)  # no W head
    H = _H()
    F, W = m(H)
    torch.testing.assert_close(W, zoo.matched_combiner(H, F))
    (-(W.mH @ H @ F).abs().square().sum()).backward()
    assert all(p.grad is not None for p in m.parameters())
    with pytest.raises(ValueError, match="combiner must be one of head, matched"):
        zoo.create(name, combiner="mmse")


def test_unfolded_layers_are_subspace_iteration():
    """complex-unfolded at its init (a = 1, b = 0) is plain subspace iteration from the CNN's F0:
    F_T spans (H^H H)^T F0, and iterations=0 is the CNN alone."""
    torch.manual_seed(0)
    m = ComplexUnfolded(iterations=3, **{k: v for k, v in TINY["complex-unfolded"].items() if k != "iterations"})
    H = _H(B=2)
    F, W = m(H)
    with torch.no_grad():
        F0, _ = m.cnn.raw_outputs(H)
        X = F0.to(torch.complex128)
        H2 = H.to(torch.complex128)
        for _ in range(3):
            X = H2.mH @ (H2 @ X)
        Q = torch.linalg.qr(X).Q
    # same subspace: the projector onto span(F) equals the one onto span((H^H H)^3 F0)
    P = F.detach().to(torch.complex128)
    torch.testing.assert_close(P @ P.mH, Q @ Q.mH, rtol=0, atol=2e-4)
    torch.testing.assert_close(F.mH @ F, torch.eye(Ns, dtype=F.dtype).expand(2, K, Ns, Ns), rtol=0, atol=1e-5)
    torch.testing.assert_close(W, zoo.matched_combiner(H, F))
    # T = 0: the CNN alone (its normalized F0), the same as thesis-complex-cnn with a matched W
    cnn_only = ComplexUnfolded(iterations=0, width=2, hidden=16)
    cnn_only.cnn.load_state_dict(m.cnn.state_dict())
    F_0, _ = cnn_only(H)
    F_ref, _ = m.cnn(H)
    torch.testing.assert_close(F_0, F_ref)
    assert zoo.count_parameters(m) - zoo.count_parameters(cnn_only) == 3 * 2 * 2  # a_t, b_t complex


def test_unfolded_scalars_get_finite_gradients_from_the_rate():
    from beamkernels.losses import neg_rate_loss

    torch.manual_seed(0)
    m = zoo.create("complex-unfolded", **TINY["complex-unfolded"])
    H = _H()
    F, W = m(H)
    neg_rate_loss(H, F, W, 10.0).backward()
    for p in (m.a, m.b):
        g = torch.view_as_real(p.grad)
        assert torch.isfinite(g).all() and g.abs().sum() > 0
    assert all(torch.isfinite(torch.view_as_real(p.grad) if p.is_complex() else p.grad).all() for p in m.parameters())


def test_unfolded_bad_config_errors():
    with pytest.raises(ValueError, match="complex-unfolded: combiner must be 'matched'"):
        zoo.create("complex-unfolded", combiner="head")
    with pytest.raises(ValueError, match="combiner must be one of head, matched"):
        zoo.create("complex-unfolded", combiner="mmse")
    for bad in (-1, 1.5, True):
        with pytest.raises(ValueError, match="iterations must be an int >= 0"):
            zoo.create("complex-unfolded", iterations=bad)


def _rate_loss_grads(model, H):
    from beamkernels.losses import neg_rate_loss

    F, W = model(H)
    loss = neg_rate_loss(H, F, W, 10.0)
    model.zero_grad()
    loss.backward()
    return F, W, [p.grad for p in model.parameters() if p.grad is not None]


@pytest.mark.parametrize("name", NAMES)
def test_rank_deficient_channels_keep_gradients_finite(name):
    # A zero subcarrier, and an exactly rank-1 channel: QR of H F (matched combiner) and of the
    # unfolded layers' iterates is rank-deficient there; its backward once made every gradient NaN.
    combiner = {} if name in ("complex-unfolded", "thesis-real-encoder") else {"combiner": "matched"}
    model = zoo.create(name, **TINY[name], **combiner)
    torch.manual_seed(0)
    H = _H()
    H[0, 2] = 0
    H[1, 1] = torch.outer(torch.randn(Nr, dtype=torch.complex64), torch.randn(Nt, dtype=torch.complex64))
    F, W, grads = _rate_loss_grads(model, H)
    assert grads and all(torch.isfinite(torch.view_as_real(g) if g.is_complex() else g).all() for g in grads)
    assert torch.isfinite(torch.view_as_real(W)).all()
    cols = W.abs().square().sum(dim=-2)
    torch.testing.assert_close(cols, torch.ones_like(cols), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("scale", [1e-8, 0.0])
def test_power_constraint_holds_at_any_channel_scale(name, scale):
    # Unnormalized channels (~1e-8 amplitude from path loss) and H = 0: F still meets ||F_k||^2 = Ns.
    model = zoo.create(name, **TINY[name]).eval()
    F, W = model(scale * _H())
    power = F.abs().square().sum(dim=(-2, -1))
    torch.testing.assert_close(power, torch.full_like(power, Ns), rtol=1e-4, atol=1e-4)
    cols = W.abs().square().sum(dim=-2)
    torch.testing.assert_close(cols, torch.ones_like(cols), rtol=1e-4, atol=1e-4)


def test_more_streams_than_antennas_is_a_clear_error():
    for name in NAMES:
        with pytest.raises(ValueError, match=r"Ns <= min\(Nr, Nt\); got K=2, Nr=4, Nt=32, Ns=6"):
            zoo.create(name, K=2, Nr=4, Nt=32, Ns=6, width=2)


def test_unfolded_model_converts_its_scalars_too():
    m = zoo.create("complex-unfolded", **TINY["complex-unfolded"]).double()
    assert {p.dtype for p in m.parameters() if p.is_complex()} == {torch.complex128}
    m = m.float()
    assert {p.dtype for p in m.parameters() if p.is_complex()} == {torch.complex64}


def test_maps_too_small_for_the_pools_are_a_clear_error():
    for name in ("thesis-real-encoder", "thesis-complex-cnn", "complex-unfolded", "complex-unet"):
        with pytest.raises(ValueError, match=r"2x2 pools need Nr, Nt >= 8; got Nr=4, Nt=32"):
            zoo.create(name, K=2, Nr=4, Nt=32, Ns=2, width=2)
    zoo.create("complex-unet", K=2, Nr=4, Nt=32, Ns=2, width=2, depth=2)  # 2 pools fit
