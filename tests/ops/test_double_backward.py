"""Second-order gradients (torch.autograd.gradgradcheck, complex128) of the ops whose backward is
a compiled op: under create_graph=True their backward goes through the pure-PyTorch reference
(beamkernels/ops/_autograd.py). Before, PyTorch's fallback treated the compiled backward ops as
constants and returned zero second-order gradients with only a warning."""

from __future__ import annotations

import pytest
import torch

import beamkernels
from beamkernels import functional as F
from tests.helpers import crandn


def _real(*shape, device, lo=-0.5):
    return (torch.rand(*shape, dtype=torch.float64, device=device) + lo).requires_grad_(True)


def _cases(device):
    def c(*s):
        return crandn(*s, dtype=torch.complex128, device=device, requires_grad=True)

    bn_w = torch.tensor([[1.0, 0.1, 0.9], [0.8, 0.0, 1.1]], dtype=torch.float64, device=device).requires_grad_(True)
    return {
        "cardioid": (F.cardioid, (c(2, 3, 4),)),
        "zrelu": (F.zrelu, (c(2, 3, 4),)),
        "modrelu": (F.modrelu, (c(2, 3, 4), _real(3, device=device))),
        "conv2d-modrelu": (lambda x, w, b, ab: F.complex_conv2d(x, w, b, padding=1, activation="modrelu",
                                                                activation_bias=ab),
                           (c(1, 2, 4, 5), c(3, 2, 3, 3), c(3), _real(3, device=device))),
        "conv2d-strided": (lambda x, w: F.complex_conv2d(x, w, stride=2, padding=1), (c(1, 2, 5, 5), c(3, 2, 3, 3))),
        "batch_norm-train": (lambda x, w, b: F.complex_batch_norm(x, None, None, w, b, True),
                             (c(4, 2, 3), bn_w, _real(2, 2, device=device))),
        "max_pool2d": (lambda x: F.complex_max_pool2d(x, 2), (c(1, 2, 4, 4),)),
    }


@pytest.mark.parametrize("op", ["cardioid", "zrelu", "modrelu", "conv2d-modrelu", "conv2d-strided", "batch_norm-train",
                                "max_pool2d"])
def test_gradgradcheck(backend, device, op):
    fn, args = _cases(device)[op]
    with beamkernels.use_backend(backend):
        assert torch.autograd.gradgradcheck(fn, args)


def test_first_order_backward_keeps_the_compiled_ops(monkeypatch):
    # Without create_graph the reference path is never taken (it is the slow path).
    if "cpu" not in beamkernels.available_backends():
        pytest.skip("extension not built")
    import beamkernels.ops.conv as conv_ops

    def fail(*a, **k):
        raise AssertionError("reference path taken in a first-order backward")

    monkeypatch.setattr(conv_ops, "reference_vjp", fail)
    x = crandn(1, 2, 4, 5, requires_grad=True)
    w = crandn(3, 2, 3, 3, requires_grad=True)
    with beamkernels.use_backend("cpu"):
        F.complex_conv2d(x, w, padding=1, activation="cardioid").abs().sum().backward()
    assert x.grad is not None and w.grad is not None
