"""Complex weight initialization (Trabelsi et al. 2018, section 3.6).

A complex weight w = |w| e^{i theta} gets a Rayleigh-distributed modulus with scale sigma and a
uniform phase theta in [-pi, pi). Then E|w|^2 = 2 sigma^2, so
- He (``complex_kaiming_``, the default of the beamkernels conv layers): sigma = 1 / sqrt(fan_in),
  E|w|^2 = 2 / fan_in, the variance of real He init;
- Glorot (``complex_xavier_``): sigma = 1 / sqrt(fan_in + fan_out), E|w|^2 = 2 / (fan_in + fan_out),
  the variance of real Glorot init.
fan_in / fan_out as torch.nn.init computes them (weight.shape[1] * receptive field, and
weight.shape[0] * receptive field).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


def _fans(tensor: Tensor) -> tuple[int, int]:
    if tensor.dim() < 2:
        raise ValueError(f"complex init needs a weight with at least 2 dims, got shape {list(tensor.shape)}")
    return torch.nn.init._calculate_fan_in_and_fan_out(tensor)


def _rayleigh_uniform_phase_(tensor: Tensor, sigma: float, generator: torch.Generator | None) -> Tensor:
    if not tensor.is_complex():
        raise TypeError(f"complex init needs a complex tensor, got dtype {tensor.dtype}")
    real = tensor.real.dtype
    with torch.no_grad():
        u = torch.rand(tensor.shape, dtype=real, device=tensor.device, generator=generator)
        modulus = sigma * torch.sqrt(-2.0 * torch.log1p(-u))  # inverse CDF of Rayleigh(sigma)
        phase = (torch.rand(tensor.shape, dtype=real, device=tensor.device, generator=generator) * 2 - 1) * math.pi
        tensor.copy_(torch.polar(modulus, phase))
    return tensor


def complex_kaiming_(tensor: Tensor, mode: str = "fan_in", generator: torch.Generator | None = None) -> Tensor:
    """Complex He init in place: Rayleigh modulus with sigma = 1 / sqrt(fan), uniform phase
    (E|w|^2 = 2 / fan); ``mode`` 'fan_in' (default) or 'fan_out'."""
    fan_in, fan_out = _fans(tensor)
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"complex_kaiming_: mode must be 'fan_in' or 'fan_out', got {mode!r}")
    fan = fan_in if mode == "fan_in" else fan_out
    return _rayleigh_uniform_phase_(tensor, 1.0 / math.sqrt(max(fan, 1)), generator)


def complex_xavier_(tensor: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Complex Glorot init in place: Rayleigh modulus with sigma = 1 / sqrt(fan_in + fan_out),
    uniform phase (E|w|^2 = 2 / (fan_in + fan_out))."""
    fan_in, fan_out = _fans(tensor)
    return _rayleigh_uniform_phase_(tensor, 1.0 / math.sqrt(max(fan_in + fan_out, 1)), generator)
