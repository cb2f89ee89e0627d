"""Building blocks shared by the complex models (all from beamkernels.nn, so the fused kernels
run): activation by name, conv + whitening BN + activation, and the dense F/W heads."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from beamkernels import nn as bnn
from beamkernels.models.outputs import split_outputs

ACTIVATIONS = ("modrelu", "crelu", "zrelu", "cardioid")


def check_activation(name: str) -> str:
    if name not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {', '.join(ACTIVATIONS)}; got {name!r}")
    return name


def make_activation(name: str, channels: int, device=None, dtype=None) -> nn.Module:
    """A standalone complex activation layer (used after a batch-norm, where it cannot be fused
    into the conv)."""
    check_activation(name)
    if name == "modrelu":
        return bnn.ModReLU(channels, device=device, dtype=dtype)
    return {"crelu": bnn.CReLU, "zrelu": bnn.ZReLU, "cardioid": bnn.Cardioid}[name]()


class ConvBNAct(nn.Module):
    """Complex 3x3 conv (no bias: the BN's shift replaces it) -> whitening BN -> activation."""

    def __init__(self, cin: int, cout: int, activation: str, stride: int = 1, act: bool = True,
                 device=None, dtype=None):
        super().__init__()
        kw = dict(device=device, dtype=dtype)
        self.conv = bnn.ComplexConv2d(cin, cout, 3, stride=stride, padding=1, bias=False, **kw)
        self.bn = bnn.ComplexBatchNorm2d(cout, **kw)
        self.act = make_activation(activation, cout, **kw) if act else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        return self.act(self.bn(self.conv(x)))


class DenseHeads(nn.Module):
    """Two complex linear heads from a feature vector: F [B, K, Nt, Ns] and W [B, K, Nr, Ns],
    then the shared output normalizations."""

    def __init__(self, features: int, K: int, Nr: int, Nt: int, Ns: int, device=None, dtype=None):
        super().__init__()
        self.K, self.Nr, self.Nt, self.Ns = K, Nr, Nt, Ns
        self.f_head = bnn.ComplexLinear(features, K * Nt * Ns, device=device, dtype=dtype)
        self.w_head = bnn.ComplexLinear(features, K * Nr * Ns, device=device, dtype=dtype)

    def forward(self, z: Tensor) -> tuple[Tensor, Tensor]:
        B = z.shape[0]
        F = self.f_head(z).reshape(B, self.K, self.Nt, self.Ns)
        W = self.w_head(z).reshape(B, self.K, self.Nr, self.Ns)
        return split_outputs(F, W)


def check_input(H: Tensor, K: int, Nr: int, Nt: int, name: str) -> None:
    if not isinstance(H, torch.Tensor) or not H.is_complex():
        got = H.dtype if isinstance(H, torch.Tensor) else type(H).__name__
        raise TypeError(f"{name}: H must be a complex tensor [B, {K}, {Nr}, {Nt}], got {got}")
    if H.dim() != 4 or tuple(H.shape[1:]) != (K, Nr, Nt):
        raise ValueError(f"{name}: H must have shape [B, {K}, {Nr}, {Nt}] (B, K, Nr, Nt), got {list(H.shape)}")
