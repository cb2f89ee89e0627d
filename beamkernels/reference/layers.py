"""Complex linear, dropout and upsampling in plain PyTorch (the specification).

- complex_linear: y = x W^T + b, complex W [out, in] and b [out] (what torch.nn.functional.linear
  computes on complex tensors).
- complex_dropout: ONE Bernoulli(1 - p) mask shared by the real and imaginary parts; kept values
  are scaled by 1 / (1 - p) exactly once, so E[y] = x and E|y|^2 = |x|^2 / (1 - p)
  (like torch's real dropout). p = 1 gives zeros. complex_dropout2d: one mask per (sample,
  channel) of [N, C, H, W] (or per channel of unbatched [C, H, W]).
- complex_upsample: torch's interpolate (nearest / bilinear) on Re and Im, exact since both
  are linear in the input.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def complex_linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """y = x W^T + b on complex tensors."""
    return F.linear(x, weight, bias)


def _apply_mask(x: Tensor, mask_shape: tuple[int, ...], p: float) -> Tensor:
    if p == 1.0:
        return x * 0  # keeps the graph (grad 0) and avoids 0 * inf
    # The mask is real: multiplying by it scales Re and Im by the same 0 or 1 / (1 - p).
    keep = torch.empty(mask_shape, dtype=x.real.dtype, device=x.device).bernoulli_(1.0 - p)
    return x * keep.div_(1.0 - p)


def complex_dropout(x: Tensor, p: float = 0.5, training: bool = True) -> Tensor:
    """Zero each complex element with probability p (Re and Im together), scale the rest by 1/(1-p)."""
    if not training or p == 0.0:
        return x
    return _apply_mask(x, tuple(x.shape), p)


def complex_dropout2d(x: Tensor, p: float = 0.5, training: bool = True) -> Tensor:
    """Zero whole channels with probability p: one mask per (sample, channel), scale by 1/(1-p)."""
    if not training or p == 0.0:
        return x
    lead = 2 if x.dim() == 4 else 1  # [N, C, H, W] or unbatched [C, H, W]
    return _apply_mask(x, tuple(x.shape[:lead]) + (1,) * (x.dim() - lead), p)


def complex_upsample(x: Tensor, size=None, scale_factor=None, mode: str = "nearest",
                     align_corners: bool | None = None, recompute_scale_factor: bool | None = None) -> Tensor:
    """torch.nn.functional.interpolate on Re and Im."""
    def f(t):
        return F.interpolate(t, size=size, scale_factor=scale_factor, mode=mode, align_corners=align_corners,
                             recompute_scale_factor=recompute_scale_factor)

    return torch.complex(f(x.real), f(x.imag))
