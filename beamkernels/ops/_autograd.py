"""Higher-order gradients of the compiled ops.

The C++ / CUDA / Triton backward ops have no autograd of their own: under
``torch.autograd.grad(..., create_graph=True)`` (double backward, gradient penalties) PyTorch's
fallback would treat them as constants and return zero second-order gradients with only a
warning. So when the backward itself is being recorded (grad mode is on inside a backward only
with create_graph=True), each op's backward takes the vector-Jacobian product through its
pure-PyTorch reference instead, which autograd differentiates again: correct at any order, at
the reference's speed. First-order backward passes never take this path."""

from __future__ import annotations

from typing import Callable, Sequence

import torch
from torch import Tensor


def recording() -> bool:
    """True inside a backward that autograd records (create_graph=True)."""
    return torch.is_grad_enabled()


def reference_vjp(fn: Callable[..., Tensor], inputs: Sequence[Tensor | None], need: Sequence[bool],
                  grad: Tensor) -> list[Tensor | None]:
    """d<fn(*inputs), grad>/d inputs for the inputs with need[i], differentiable (create_graph)."""
    wanted = [i for i, (t, n) in enumerate(zip(inputs, need)) if n and t is not None and t.requires_grad]
    out: list[Tensor | None] = [None] * len(inputs)
    if not wanted:
        return out
    with torch.enable_grad():
        y = fn(*inputs)
    grads = torch.autograd.grad(y, [inputs[i] for i in wanted], grad, create_graph=True, allow_unused=True)
    for i, g in zip(wanted, grads):
        out[i] = g if g is not None else torch.zeros_like(inputs[i])
    return out
