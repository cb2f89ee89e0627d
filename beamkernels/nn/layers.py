"""Complex linear, dropout and upsampling layers (torch.nn signatures) over beamkernels.functional."""

from __future__ import annotations


import torch
from torch import Tensor, nn

from beamkernels import functional as F
from beamkernels.nn._dtype import RealStateFollowsDtype
from beamkernels.nn.init import complex_kaiming_
from beamkernels.nn.activation import write_into
from beamkernels.ops.layers import UPSAMPLE_MODES, check_dropout_p


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
        self._check_input_dtype(x)
        return F.complex_linear(x, self.weight, self.bias)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


class ComplexDropout(nn.Module):
    """Dropout with one mask shared by Re and Im, kept values scaled by 1/(1-p); identity in eval.
    Arguments as torch.nn.Dropout: ``inplace=True`` writes the result into the input."""

    def __init__(self, p: float = 0.5, inplace: bool = False):
        super().__init__()
        self.p = check_dropout_p(p, "ComplexDropout")
        self.inplace = inplace

    def forward(self, x: Tensor) -> Tensor:
        if self.inplace and self.training:
            return write_into(x, "complex_dropout", F.complex_dropout, self.p, True)
        return F.complex_dropout(x, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}, inplace={self.inplace}"


class ComplexDropout2d(nn.Module):
    """Channel dropout: one mask per (sample, channel), kept channels scaled by 1/(1-p); identity in eval.
    Arguments as torch.nn.Dropout2d: ``inplace=True`` writes the result into the input."""

    def __init__(self, p: float = 0.5, inplace: bool = False):
        super().__init__()
        self.p = check_dropout_p(p, "ComplexDropout2d")
        self.inplace = inplace

    def forward(self, x: Tensor) -> Tensor:
        if self.inplace and self.training:
            return write_into(x, "complex_dropout2d", F.complex_dropout2d, self.p, True)
        return F.complex_dropout2d(x, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}, inplace={self.inplace}"


class ComplexUpsample(nn.Module):
    """Upsampling of Re and Im (exact: interpolation is linear), modes 'nearest' (3-D, 4-D or 5-D
    input) and 'bilinear' (4-D) only: torch.nn.Upsample's other modes are refused. torch.nn.Upsample's
    arguments (size, scale_factor, mode, align_corners, recompute_scale_factor)."""

    def __init__(self, size=None, scale_factor=None, mode: str = "nearest", align_corners: bool | None = None,
                 recompute_scale_factor: bool | None = None):
        super().__init__()
        if mode not in UPSAMPLE_MODES:
            raise ValueError(f"ComplexUpsample: mode must be one of {sorted(UPSAMPLE_MODES)} (torch.nn.Upsample's other "
                             f"modes are not supported), got {mode!r}")
        self.size = size
        self.scale_factor = scale_factor
        self.mode = mode
        self.align_corners = align_corners
        self.recompute_scale_factor = recompute_scale_factor

    def forward(self, x: Tensor) -> Tensor:
        return F.complex_upsample(x, self.size, self.scale_factor, self.mode, self.align_corners,
                                  self.recompute_scale_factor)

    def extra_repr(self) -> str:
        what = f"size={self.size}" if self.size is not None else f"scale_factor={self.scale_factor}"
        return f"{what}, mode={self.mode!r}"
