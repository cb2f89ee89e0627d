"""Complex linear, dropout and upsampling layers (torch.nn signatures) over beamkernels.functional."""

from __future__ import annotations


import torch
from torch import Tensor, nn

from beamkernels import functional as F
from beamkernels.nn._dtype import RealStateFollowsDtype
from beamkernels.nn.init import complex_kaiming_
from beamkernels.ops.layers import check_dropout_p


class ComplexLinear(RealStateFollowsDtype, nn.Module):
    """``y = x W^T + b`` with complex W [out_features, in_features] and b [out_features].

    Init: complex He (Rayleigh modulus, sigma = 1/sqrt(in_features), uniform phase); bias 0.
    dtype: complex64 (default) or complex128.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, device=None, dtype=None):
        super().__init__()
        dtype = dtype or torch.complex64
        if dtype not in (torch.complex64, torch.complex128):
            raise TypeError(f"ComplexLinear: dtype must be torch.complex64 or torch.complex128, got {dtype}")
        if in_features < 1 or out_features < 1:
            raise ValueError(f"ComplexLinear: in_features and out_features must be >= 1, got {in_features}, {out_features}")
        self.in_features = in_features
        self.out_features = out_features
        self.weight = nn.Parameter(torch.empty(out_features, in_features, device=device, dtype=dtype))
        self.bias = nn.Parameter(torch.empty(out_features, device=device, dtype=dtype)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        complex_kaiming_(self.weight)  # fan_in = in_features
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    def forward(self, x: Tensor) -> Tensor:
        return F.complex_linear(x, self.weight, self.bias)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


class ComplexDropout(nn.Module):
    """Dropout with one mask shared by Re and Im, kept values scaled by 1/(1-p); identity in eval."""

    def __init__(self, p: float = 0.5):
        super().__init__()
        self.p = check_dropout_p(p, "ComplexDropout")

    def forward(self, x: Tensor) -> Tensor:
        return F.complex_dropout(x, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}"


class ComplexDropout2d(nn.Module):
    """Channel dropout: one mask per (sample, channel), kept channels scaled by 1/(1-p); identity in eval."""

    def __init__(self, p: float = 0.5):
        super().__init__()
        self.p = check_dropout_p(p, "ComplexDropout2d")

    def forward(self, x: Tensor) -> Tensor:
        return F.complex_dropout2d(x, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}"


class ComplexUpsample(nn.Module):
    """Upsampling (nearest or bilinear) of Re and Im. Arguments as torch.nn.Upsample."""

    def __init__(self, size=None, scale_factor=None, mode: str = "nearest", align_corners: bool | None = None):
        super().__init__()
        self.size = size
        self.scale_factor = scale_factor
        self.mode = mode
        self.align_corners = align_corners

    def forward(self, x: Tensor) -> Tensor:
        return F.complex_upsample(x, self.size, self.scale_factor, self.mode, self.align_corners)

    def extra_repr(self) -> str:
        what = f"size={self.size}" if self.size is not None else f"scale_factor={self.scale_factor}"
        return f"{what}, mode={self.mode!r}"
