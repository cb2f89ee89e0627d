"""Complex convolutions in plain PyTorch (the specification).

``torch.nn.functional.conv1d/conv2d/conv_transpose2d`` on complex tensors (PyTorch computes them
with Gauss's 3 real convolutions), then the optional activation of
beamkernels/reference/activation.py. Every backend must agree with these, values and gradients.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from beamkernels.reference.activation import cardioid, crelu, modrelu, zrelu

ACTIVATIONS = (None, "crelu", "zrelu", "modrelu", "cardioid")


def apply_activation(z: Tensor, activation: str | None, activation_bias: Tensor | None = None) -> Tensor:
    """activation(z); ``activation_bias`` is modReLU's real bias per channel (dim 1)."""
    if activation is None:
        return z
    if activation == "modrelu":
        return modrelu(z, activation_bias)
    if activation == "crelu":
        return crelu(z)
    if activation == "zrelu":
        return zrelu(z)
    if activation == "cardioid":
        return cardioid(z)
    raise ValueError(f"unknown activation {activation!r}; expected one of {ACTIVATIONS}")


def complex_conv2d(x: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0, dilation=1,
                   groups: int = 1, activation: str | None = None, activation_bias: Tensor | None = None) -> Tensor:
    """activation(conv2d(x, weight, bias)) on complex tensors."""
    z = F.conv2d(x, weight, bias, stride, padding, dilation, groups)
    return apply_activation(z, activation, activation_bias)


def complex_conv1d(x: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0, dilation=1,
                   groups: int = 1, activation: str | None = None, activation_bias: Tensor | None = None) -> Tensor:
    """activation(conv1d(x, weight, bias)) on complex tensors."""
    z = F.conv1d(x, weight, bias, stride, padding, dilation, groups)
    return apply_activation(z, activation, activation_bias)


def complex_conv_transpose2d(x: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0,
                             output_padding=0, groups: int = 1, dilation=1, activation: str | None = None,
                             activation_bias: Tensor | None = None) -> Tensor:
    """activation(conv_transpose2d(x, weight, bias)) on complex tensors (the transpose, not the
    conjugate transpose, of conv2d: what PyTorch computes)."""
    z = F.conv_transpose2d(x, weight, bias, stride, padding, output_padding, groups, dilation)
    return apply_activation(z, activation, activation_bias)
