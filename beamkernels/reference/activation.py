"""Complex activations in plain PyTorch (the specification).

Values and (sub)gradients at the non-differentiable points are fixed here and every backend
agrees (csrc/activation.h implements the same):
- crelu: relu on each part; relu'(0) = 0.
- zrelu: the closed first quadrant (Re >= 0 and Im >= 0) passes, gradient 1 there.
- modrelu: 0, with zero gradient, where |z| + b <= 0 or z = 0.
- cardioid: 0 at z = 0, with gradient 0.5 * grad there (the mean of the directional slopes).
No NaN anywhere: divisions use a safe denominator and torch.where.
"""

from __future__ import annotations

import torch
from torch import Tensor


def crelu(x: Tensor) -> Tensor:
    """relu(Re z) + i relu(Im z) (Trabelsi et al. 2018)."""
    return torch.complex(torch.relu(x.real), torch.relu(x.imag))


def zrelu(x: Tensor) -> Tensor:
    """z where Re z >= 0 and Im z >= 0, else 0 (Guberman 2016)."""
    keep = (x.real >= 0) & (x.imag >= 0)
    return torch.where(keep, x, torch.zeros_like(x))


def _channel_view(b: Tensor, x: Tensor) -> Tensor:
    """Reshape a per-channel vector [C] to broadcast over x [N, C, *]."""
    return b.reshape((1, -1) + (1,) * (x.dim() - 2))


def _safe_abs(x: Tensor) -> tuple[Tensor, Tensor]:
    """(|z| with 1 where z = 0, mask z != 0). sqrt is never taken at 0, so its backward
    (1 / 2 sqrt) cannot produce inf * 0 = NaN in the masked-out branch."""
    r2 = x.real * x.real + x.imag * x.imag
    nonzero = r2 > 0
    return torch.sqrt(torch.where(nonzero, r2, torch.ones_like(r2))), nonzero


def modrelu(x: Tensor, bias: Tensor) -> Tensor:
    """relu(|z| + b) z / |z|, 0 at z = 0 (Arjovsky et al. 2016); b real, one per channel (dim 1)."""
    b = _channel_view(bias, x)
    r, nonzero = _safe_abs(x)
    active = nonzero & (r + b > 0)
    scale = torch.where(active, 1 + b / r, torch.zeros_like(r))
    return x * scale


def cardioid(x: Tensor) -> Tensor:
    """0.5 (1 + Re z / |z|) z, 0 at z = 0 (Virtue et al. 2017); Re z / |z| = cos(arg z)."""
    r, nonzero = _safe_abs(x)
    cos = torch.where(nonzero, x.real / r, torch.zeros_like(r))
    return 0.5 * (1 + cos) * x
