"""Complex activation layers (torch.nn style) over beamkernels.functional."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from beamkernels import functional as F
from beamkernels.nn._dtype import RealStateFollowsDtype


class CReLU(nn.Module):
    """Split ReLU, ``relu(Re z) + i relu(Im z)`` (Trabelsi et al. 2018)."""

    def forward(self, x: Tensor) -> Tensor:
        return F.crelu(x)


class ZReLU(nn.Module):
    """zReLU: passes z in the closed first quadrant, else 0 (Guberman 2016)."""

    def forward(self, x: Tensor) -> Tensor:
        return F.zrelu(x)


class Cardioid(nn.Module):
    """Cardioid, ``0.5 (1 + cos arg z) z`` (Virtue et al. 2017)."""

    def forward(self, x: Tensor) -> Tensor:
        return F.cardioid(x)


class ModReLU(RealStateFollowsDtype, nn.Module):
    """modReLU, ``relu(|z| + b) z / |z|`` with a learnable real bias per channel (dim 1).

    Args:
        num_features: number of channels C of the input [N, C, ...].
        bias_init: initial value of every bias (default 0: modReLU starts as the identity on
            nonzero inputs; a negative value makes a dead zone around 0).
    """

    def __init__(self, num_features: int, bias_init: float = 0.0, device=None, dtype=None):
        super().__init__()
        if num_features < 1:
            raise ValueError(f"ModReLU: num_features must be >= 1, got {num_features}")
        real = (dtype or torch.float32).to_real()  # complex64 -> float32; a real dtype stays
        self.num_features = num_features
        self.bias = nn.Parameter(torch.full((num_features,), float(bias_init), device=device, dtype=real))

    def forward(self, x: Tensor) -> Tensor:
        return F.modrelu(x, self.bias)

    def extra_repr(self) -> str:
        return f"{self.num_features}"
