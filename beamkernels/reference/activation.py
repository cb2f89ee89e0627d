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


# z is scaled by an exact power of two (not learned, no gradient of its own) when max(|Re|, |Im|)
# leaves [small, large], so that neither |z| nor its backward (1 / |z|^2 terms) under- or
# overflows for tiny or huge z (csrc/activation.h to_polar does the same).
_POLAR_SCALE = {  # dtype of the real parts: (small, large, up, down)
    torch.float32: (2.0 ** -50, 2.0 ** 50, 2.0 ** 100, 2.0 ** -100),
    torch.float64: (2.0 ** -450, 2.0 ** 450, 2.0 ** 600, 2.0 ** -600),
}


def _polar(x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """(u = z / |z| with 0 at z = 0, r = |z|, mask z != 0); no NaN in the backward."""
    small, large, up, down = _POLAR_SCALE[x.real.dtype]
    m = torch.maximum(x.real.abs(), x.imag.abs())
    one = torch.ones_like(m)
    scale = torch.where(m < small, one * up, torch.where(m > large, one * down, one))
    xs = x * scale
    nonzero = x != 0
    rs = torch.where(nonzero, xs.abs(), torch.ones_like(m))
    return xs / rs, rs / scale, nonzero


def modrelu(x: Tensor, bias: Tensor) -> Tensor:
    """relu(|z| + b) z / |z| = (|z| + b) u = z + b u, 0 at z = 0 (Arjovsky et al. 2016);
    b real, one per channel (dim 1)."""
    b = _channel_view(bias, x)
    u, r, nonzero = _polar(x)
    active = nonzero & (r + b > 0)
    return torch.where(active, x + b * u, torch.zeros_like(x))


def cardioid(x: Tensor) -> Tensor:
    """0.5 (1 + Re z / |z|) z = 0.5 (z + Re z u), 0 at z = 0 (Virtue et al. 2017);
    Re z / |z| = cos(arg z)."""
    u, _, _ = _polar(x)
    return 0.5 * (x + x.real * u)
