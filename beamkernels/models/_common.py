"""Building blocks shared by the complex models (all from beamkernels.nn, so the fused kernels
run): activation by name, conv + whitening BN + activation, and the dense F/W heads."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from beamkernels import nn as bnn
from beamkernels.models.outputs import matched_combiner, normalize_precoder, split_outputs

ACTIVATIONS = ("modrelu", "crelu", "zrelu", "cardioid")
# "head": W is predicted by its own head (the thesis design); "matched": W is computed from H and
# the predicted F (orthonormal basis of col(H_k F_k), the best receiver for that F; no W head).
COMBINERS = ("head", "matched")


def check_streams(K: int, Nr: int, Nt: int, Ns: int, name: str) -> None:
    """Ns streams need Ns <= min(Nr, Nt): no precoder / combiner has more independent columns."""
    if min(K, Nr, Nt, Ns) < 1 or Ns > min(Nr, Nt):
        raise ValueError(f"{name}: need K, Nr, Nt, Ns >= 1 and Ns <= min(Nr, Nt); got K={K}, Nr={Nr}, Nt={Nt}, Ns={Ns}")


def check_poolable(Nr: int, Nt: int, pools: int, name: str) -> None:
    """Nr x Nt must survive `pools` 2x2 max-pools (each map side >= 2^pools)."""
    if min(Nr, Nt) < 2**pools:
        raise ValueError(f"{name}: its {pools} 2x2 pools need Nr, Nt >= {2**pools}; got Nr={Nr}, Nt={Nt}")


def check_combiner(name: str) -> str:
    if name not in COMBINERS:
        raise ValueError(f"combiner must be one of {', '.join(COMBINERS)}; got {name!r}")
    return name


def finish(H: Tensor, F: Tensor, W: Tensor | None) -> tuple[Tensor, Tensor]:
    """The model's outputs: F normalized, W from the head (normalized) or matched to H F."""
    if W is None:
        F = normalize_precoder(F)
        return F, matched_combiner(H, F)
    return split_outputs(F, W)


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
    """Complex linear heads from a feature vector: F [B, K, Nt, Ns] and (with_w) W [B, K, Nr, Ns],
    unnormalized (see finish)."""

    def __init__(self, features: int, K: int, Nr: int, Nt: int, Ns: int, with_w: bool = True, device=None,
                 dtype=None):
        super().__init__()
        self.K, self.Nr, self.Nt, self.Ns = K, Nr, Nt, Ns
        self.f_head = bnn.ComplexLinear(features, K * Nt * Ns, device=device, dtype=dtype)
        self.w_head = bnn.ComplexLinear(features, K * Nr * Ns, device=device, dtype=dtype) if with_w else None

    def forward(self, z: Tensor) -> tuple[Tensor, Tensor | None]:
        B = z.shape[0]
        F = self.f_head(z).reshape(B, self.K, self.Nt, self.Ns)
        W = self.w_head(z).reshape(B, self.K, self.Nr, self.Ns) if self.w_head is not None else None
        return F, W


def check_input(H: Tensor, K: int, Nr: int, Nt: int, name: str) -> None:
    if not isinstance(H, torch.Tensor) or not H.is_complex():
        got = H.dtype if isinstance(H, torch.Tensor) else type(H).__name__
        raise TypeError(f"{name}: H must be a complex tensor [B, {K}, {Nr}, {Nt}], got {got}")
    if H.dim() != 4 or tuple(H.shape[1:]) != (K, Nr, Nt):
        raise ValueError(f"{name}: H must have shape [B, {K}, {Nr}, {Nt}] (B, K, Nr, Nt), got {list(H.shape)}")
