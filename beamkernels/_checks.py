"""Input validation shared by every public op: clear errors that name the argument, what was
expected and what came. Called before dispatch, so every backend (reference included) rejects
the same inputs the same way. Written with torch._check so that it traces under torch.compile."""

from __future__ import annotations

import torch

COMPLEX_DTYPES = (torch.complex64, torch.complex128)


def check_tensor(x, op: str, arg: str) -> None:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"beamkernels.{op}: argument '{arg}' must be a torch.Tensor, got {type(x).__name__}")


def check_complex(x, op: str, arg: str = "x") -> None:
    check_tensor(x, op, arg)
    if x.dtype not in COMPLEX_DTYPES:
        hint = " (use torch.complex(re, im) or x.to(torch.complex64))" if not x.is_complex() else ""
        raise TypeError(
            f"beamkernels.{op}: argument '{arg}' must be a complex tensor (complex64 or complex128), "
            f"got dtype {x.dtype}{hint}"
        )


def check_real_param(p, x: torch.Tensor, op: str, arg: str, shape: tuple[int, ...]) -> None:
    """A real parameter (e.g. modReLU's bias) of dtype x.real.dtype, on x's device, of `shape`."""
    check_tensor(p, op, arg)
    real = torch.empty((), dtype=x.dtype).real.dtype
    if p.is_complex() or p.dtype != real:
        raise TypeError(f"beamkernels.{op}: argument '{arg}' must be a real tensor of dtype {real} (x is {x.dtype}), got {p.dtype}")
    if tuple(p.shape) != tuple(shape):
        raise ValueError(f"beamkernels.{op}: argument '{arg}' must have shape {list(shape)}, got {list(p.shape)}")
    check_same_device(p, x, op, arg, "x")


def check_same_device(a: torch.Tensor, b: torch.Tensor, op: str, an: str, bn: str) -> None:
    if a.device != b.device:
        raise ValueError(f"beamkernels.{op}: argument '{an}' is on {a.device} but '{bn}' is on {b.device}")


def check_same_dtype(a: torch.Tensor, b: torch.Tensor, op: str, an: str, bn: str) -> None:
    if a.dtype != b.dtype:
        raise TypeError(f"beamkernels.{op}: argument '{an}' has dtype {a.dtype} but '{bn}' has dtype {b.dtype}")


def check_min_dim(x: torch.Tensor, n: int, op: str, arg: str, layout: str) -> None:
    if x.dim() < n:
        raise ValueError(f"beamkernels.{op}: argument '{arg}' must have at least {n} dims ({layout}), got shape {list(x.shape)}")
