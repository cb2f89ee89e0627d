"""Complex activation layers (torch.nn style) over beamkernels.functional."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from beamkernels import functional as F
from beamkernels._checks import check_complex
from beamkernels.nn._dtype import RealStateFollowsDtype, complex_dtype


def write_into(x, op: str, fn, *args) -> Tensor:
    """inplace=True (as torch.nn.ReLU(inplace=True)): ``fn(x, *args)`` written into x, and x
    returned. The ops are not in-place, so this saves no memory; while autograd records, fn runs
    on a copy of x (an op that saved x for its backward would see x overwritten)."""
    check_complex(x, op, "x")  # a real or non-tensor x gets the op's message, not copy_'s
    src = x.clone() if torch.is_grad_enabled() and x.requires_grad else x
    return x.copy_(fn(src, *args))


class _Pointwise(nn.Module):
    """A parameter-free activation with torch.nn.ReLU's ``inplace`` argument."""

    _op = ""

    def __init__(self, inplace: bool = False):
        super().__init__()
        self.inplace = inplace

    def forward(self, x: Tensor) -> Tensor:
        fn = getattr(F, self._op)
        return write_into(x, self._op, fn) if self.inplace else fn(x)

    def extra_repr(self) -> str:
        return "inplace=True" if self.inplace else ""


class CReLU(_Pointwise):
    """Split ReLU, ``relu(Re z) + i relu(Im z)`` (Trabelsi et al. 2018)."""

    _op = "crelu"


class ZReLU(_Pointwise):
    """zReLU: passes z in the closed first quadrant, else 0 (Guberman 2016)."""

    _op = "zrelu"


class Cardioid(_Pointwise):
    """Cardioid, ``0.5 (1 + cos arg z) z`` (Virtue et al. 2017)."""

    _op = "cardioid"


class ModReLU(RealStateFollowsDtype, nn.Module):
    """modReLU, ``relu(|z| + b) z / |z|`` with a learnable real bias per channel (dim 1).

    Args:
        num_features: number of channels C of the input [N, C, ...].
        bias_init: initial value of every bias (default 0: modReLU starts as the identity on
            nonzero inputs; a negative value makes a dead zone around 0).
        device, dtype: of the layer (dtype complex64 / complex128, or its real counterpart
            float32 / float64: the bias is real).
        inplace: write the result into the input (as torch.nn.ReLU(inplace=True)).
    """

    def __init__(self, num_features: int, bias_init: float = 0.0, device=None, dtype=None, *,
                 inplace: bool = False):
        super().__init__()
        if num_features < 1:
            raise ValueError(f"ModReLU: num_features must be >= 1, got {num_features}")
        real = complex_dtype("ModReLU", dtype, allow_real=True).to_real()
        self.num_features = num_features
        self.inplace = inplace
        self.bias = nn.Parameter(torch.full((num_features,), float(bias_init), device=device, dtype=real))

    def forward(self, x: Tensor) -> Tensor:
        if isinstance(x, Tensor) and x.dim() >= 2 and x.shape[1] != self.num_features:
            raise ValueError(f"ModReLU: the input has {x.shape[1]} channels (dim 1 of {list(x.shape)}) but the layer "
                             f"was built for {self.num_features} (num_features); expected [N, {self.num_features}, ...]")
        self._check_input_dtype(x)
        if self.inplace:
            return write_into(x, "modrelu", F.modrelu, self.bias)
        return F.modrelu(x, self.bias)

    def extra_repr(self) -> str:
        return f"{self.num_features}" + (", inplace=True" if self.inplace else "")
