"""The one place where an op picks its implementation: the backend that resolve() chooses, or
the reference while torch.func transforms (grad, vmap, jacrev, ...) are active.

The compiled and Triton ops' autograd (torch.library.register_autograd) has no functorch rules,
so under torch.func.grad / vmap(grad) they fail ("must override the setup_context staticmethod");
the reference is plain differentiable PyTorch, so every transform works on it. An explicit
backend is still validated first (an explicit backend that cannot run here stays an error)."""

from __future__ import annotations

import torch

from beamkernels._backend import BACKENDS, resolve


def functorch_active() -> bool:
    """True inside a torch.func transform (its tensors are wrapped: their type is still
    torch.Tensor and they may hide requires_grad)."""
    active = getattr(torch._C, "_are_functorch_transforms_active", None)
    return bool(active()) if active is not None else False


def pick_backend(op: str, device: torch.device, implemented: tuple[str, ...] = BACKENDS) -> str:
    """resolve(op, device, implemented), or "reference" under torch.func transforms."""
    backend = resolve(op, device, implemented=implemented)
    return "reference" if functorch_active() else backend
