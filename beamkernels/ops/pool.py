"""Complex pooling: max-pool by magnitude (custom kernels) and the average pools (plain PyTorch).

- ``beamkernels::complex_max_pool2d(x, kernel_size, stride, padding, dilation, ceil_mode)
  -> (out, indices)`` and ``complex_max_pool2d_backward(grad, indices, height, width)``:
  schemas in csrc/ops.cpp, kernels for CPU (csrc/cpu/pool.cpp) and CUDA (csrc/cuda/pool.cu);
  fake and autograd here. x is [N, C, H, W]; indices are torch-style per-plane h * W + w.
- ``beamkernels::triton_complex_max_pool2d`` / ``triton_complex_max_pool2d_backward``: Triton
  (beamkernels/kernels/triton/pool.py).
- The average pools are linear: they run torch's real pools on Re and Im (exact) on every
  device, with no backend dispatch.
The reference (beamkernels/reference/pool.py) is the specification.
"""

from __future__ import annotations

import torch
from torch import Tensor

from beamkernels import _ext
from beamkernels import reference as ref
from beamkernels.ops._dispatch import pick_backend
from beamkernels._checks import check_complex
from beamkernels.ops import _triton
from beamkernels.ops._autograd import recording
from beamkernels.reference.pool import pool_output_size

_MAXPOOL = "complex_max_pool2d"


def _compiled_has(name: str) -> bool:
    return _ext.LOADED and hasattr(torch.ops.beamkernels, name)


def _fake_forward(x, kernel_size, stride, padding, dilation, ceil_mode):
    torch._check(x.dim() == 4, lambda: f"{_MAXPOOL}: x must be [N, C, H, W]")
    oh = pool_output_size(x.shape[2], kernel_size[0], stride[0], padding[0], dilation[0], ceil_mode)
    ow = pool_output_size(x.shape[3], kernel_size[1], stride[1], padding[1], dilation[1], ceil_mode)
    shape = (x.shape[0], x.shape[1], oh, ow)
    return x.new_empty(shape), x.new_empty(shape, dtype=torch.int64)


def _fake_backward(grad, indices, height, width):
    return grad.new_empty((grad.shape[0], grad.shape[1], height, width))


def _register_autograd(prefix: str, namespace: str = "beamkernels") -> None:
    backward_op = getattr(getattr(torch.ops, namespace), f"{prefix}{_MAXPOOL}_backward")

    def _setup(ctx, inputs, output):
        x = inputs[0]
        ctx.hw = (x.shape[2], x.shape[3])
        ctx.save_for_backward(output[1])

    def _backward(ctx, grad, _grad_indices):
        (indices,) = ctx.saved_tensors
        if recording():  # double backward: the same scatter in differentiable torch ops (ops/_autograd.py)
            n, c = grad.shape[:2]
            gx = grad.new_zeros(n, c, ctx.hw[0] * ctx.hw[1]).scatter_add(2, indices.flatten(2), grad.flatten(2))
            return gx.view(n, c, ctx.hw[0], ctx.hw[1]), None, None, None, None, None
        return backward_op(grad, indices, ctx.hw[0], ctx.hw[1]), None, None, None, None, None

    torch.library.register_autograd(f"{namespace}::{prefix}{_MAXPOOL}", _backward, setup_context=_setup)


# ---- compiled (C++ / CUDA) op: fake kernels and autograd ----
def register_compiled_pool(namespace: str = "beamkernels") -> None:
    """Fake kernels and autograd of <namespace>::complex_max_pool2d (the C++ / CUDA op). Called
    once for the package's own op; tests/cuda_emu calls it for the emulated CUDA build."""
    torch.library.register_fake(f"{namespace}::{_MAXPOOL}")(_fake_forward)
    torch.library.register_fake(f"{namespace}::{_MAXPOOL}_backward")(_fake_backward)
    _register_autograd("", namespace)


if _compiled_has(_MAXPOOL):
    register_compiled_pool()


# ---- Triton op ----
if _triton.ENABLED:
    from torch.library import triton_op, wrap_triton

    from beamkernels.kernels.triton import pool as tk

    _BLOCK = 256

    @triton_op(f"beamkernels::triton_{_MAXPOOL}", mutates_args=())
    def triton_complex_max_pool2d(x: Tensor, kernel_size: list[int], stride: list[int], padding: list[int],
                                  dilation: list[int], ceil_mode: bool) -> tuple[Tensor, Tensor]:
        x = x.contiguous()
        n, c, h, w = x.shape
        oh = pool_output_size(h, kernel_size[0], stride[0], padding[0], dilation[0], ceil_mode)
        ow = pool_output_size(w, kernel_size[1], stride[1], padding[1], dilation[1], ceil_mode)
        out = x.new_empty((n, c, oh, ow))
        idx = x.new_empty((n, c, oh, ow), dtype=torch.int64)
        total = out.numel()
        if total == 0:
            return out, idx
        wrap_triton(tk.max_pool_fwd_kernel)[(_triton.cdiv(total, _BLOCK),)](
            torch.view_as_real(x), torch.view_as_real(out), idx, total, h, w, oh, ow,
            stride[0], stride[1], padding[0], padding[1], dilation[0], dilation[1],
            KH=kernel_size[0], KW=kernel_size[1], BLOCK=_BLOCK)
        return out, idx

    @triton_op(f"beamkernels::triton_{_MAXPOOL}_backward", mutates_args=())
    def triton_complex_max_pool2d_backward(grad: Tensor, indices: Tensor, height: int, width: int) -> Tensor:
        grad, indices = grad.contiguous(), indices.contiguous()
        n, c, oh, ow = grad.shape
        gx = grad.new_zeros((n, c, height, width))
        total = grad.numel()
        if total == 0:
            return gx
        wrap_triton(tk.max_pool_bwd_kernel)[(_triton.cdiv(total, _BLOCK),)](
            torch.view_as_real(grad), indices, torch.view_as_real(gx), total, oh * ow, height * width,
            BLOCK=_BLOCK)
        return gx

    _register_autograd("triton_")


def _implemented() -> tuple[str, ...]:
    impl = ["reference"]
    if _compiled_has(_MAXPOOL):
        impl += ["cpu", "cuda"]
    if _triton.ENABLED:
        impl.append("triton")
    return tuple(impl)


IMPLEMENTED = _implemented()


# ---- argument checks (shared by the max and average pools) ----
def _int_pair(v, op: str, arg: str, minimum: int) -> tuple[int, int]:
    ok = isinstance(v, int) and not isinstance(v, bool)
    if ok:
        pair = (v, v)
    elif isinstance(v, (tuple, list)) and len(v) in (1, 2) and all(isinstance(e, int) and not isinstance(e, bool) for e in v):
        pair = (v[0], v[-1])
    else:
        raise TypeError(f"beamkernels.{op}: argument '{arg}' must be an int or a pair of ints, got {v!r}")
    if min(pair) < minimum:
        raise ValueError(f"beamkernels.{op}: argument '{arg}' must be >= {minimum}, got {v!r}")
    return pair


def _check_spatial(x, op: str) -> None:
    check_complex(x, op, "x")
    if x.dim() not in (3, 4):
        raise ValueError(f"beamkernels.{op}: argument 'x' must be [N, C, H, W] or unbatched [C, H, W], got shape {list(x.shape)}")
    if any(s == 0 for s in x.shape[-3:]):
        raise ValueError(f"beamkernels.{op}: argument 'x' must have nonzero C, H and W (only N may be 0), got shape {list(x.shape)}")


def _pool_args(x, op, kernel_size, stride, padding, dilation, ceil_mode):
    k = _int_pair(kernel_size, op, "kernel_size", 1)
    s = k if stride is None or (isinstance(stride, (tuple, list)) and len(stride) == 0) else _int_pair(stride, op, "stride", 1)
    p = _int_pair(padding, op, "padding", 0)
    d = _int_pair(dilation, op, "dilation", 1)
    if p[0] > k[0] // 2 or p[1] > k[1] // 2:
        raise ValueError(f"beamkernels.{op}: argument 'padding' must be at most half of kernel_size {list(k)}, got {list(p)}")
    h, w = x.shape[-2], x.shape[-1]
    oh = pool_output_size(h, k[0], s[0], p[0], d[0], bool(ceil_mode))
    ow = pool_output_size(w, k[1], s[1], p[1], d[1], bool(ceil_mode))
    if oh < 1 or ow < 1:
        raise ValueError(f"beamkernels.{op}: input {h}x{w} is too small for kernel_size {list(k)} with dilation {list(d)} "
                         f"and padding {list(p)}: the output would be {oh}x{ow}")
    return k, s, p, d


# ---- public functions ----
def complex_max_pool2d(x: Tensor, kernel_size, stride=None, padding=0, dilation=1, ceil_mode: bool = False,
                       return_indices: bool = False):
    """Max-pool by magnitude: each output is the input element with the largest ``|z|`` in its
    window, returned unchanged (ties: the first in the window, row-major; padding never wins).
    The gradient flows to that element only. ``return_indices`` gives torch-style flat per-plane
    indices ``h * W + w``. x is [N, C, H, W] or [C, H, W]; arguments as torch.nn.functional.max_pool2d.

    Equivalent to: ``_, i = F.max_pool2d(x.abs(), k, s, p, d, ceil_mode, return_indices=True);
    x.flatten(-2).gather(-1, i.flatten(-2)).view(i.shape)`` (up to ties).
    """
    _check_spatial(x, _MAXPOOL)
    k, s, p, d = _pool_args(x, _MAXPOOL, kernel_size, stride, padding, dilation, ceil_mode)
    backend = pick_backend(_MAXPOOL, x.device, implemented=IMPLEMENTED)
    if backend == "reference":
        return ref.complex_max_pool2d(x, k, s, p, d, bool(ceil_mode), return_indices)
    unbatched = x.dim() == 3
    x4 = x.unsqueeze(0) if unbatched else x
    op = torch.ops.beamkernels.triton_complex_max_pool2d if backend == "triton" else torch.ops.beamkernels.complex_max_pool2d
    out, idx = op(x4, list(k), list(s), list(p), list(d), bool(ceil_mode))
    if unbatched:
        out, idx = out.squeeze(0), idx.squeeze(0)
    return (out, idx) if return_indices else out


def complex_avg_pool2d(x: Tensor, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
                       count_include_pad: bool = True, divisor_override: int | None = None) -> Tensor:
    """The complex mean over each window (arguments as torch.nn.functional.avg_pool2d). Plain
    PyTorch on every device (linear, so exact on Re and Im).

    Equivalent to: ``torch.complex(F.avg_pool2d(x.real, ...), F.avg_pool2d(x.imag, ...))``.
    """
    op = "complex_avg_pool2d"
    _check_spatial(x, op)
    k, s, p, _ = _pool_args(x, op, kernel_size, stride, padding, 1, ceil_mode)
    if divisor_override is not None and (not isinstance(divisor_override, int) or divisor_override < 1):
        raise ValueError(f"beamkernels.{op}: argument 'divisor_override' must be a positive int or None, got {divisor_override!r}")
    return ref.complex_avg_pool2d(x, k, s, p, bool(ceil_mode), bool(count_include_pad), divisor_override)


def complex_adaptive_avg_pool2d(x: Tensor, output_size) -> Tensor:
    """The complex mean over adaptive windows (as torch.nn.functional.adaptive_avg_pool2d; an
    entry of output_size may be None to keep that input size). Plain PyTorch on every device.

    Equivalent to: ``torch.complex(F.adaptive_avg_pool2d(x.real, s), F.adaptive_avg_pool2d(x.imag, s))``.
    """
    op = "complex_adaptive_avg_pool2d"
    _check_spatial(x, op)
    size = tuple(output_size) if isinstance(output_size, (tuple, list)) else (output_size, output_size)
    if len(size) != 2 or not all(e is None or (isinstance(e, int) and not isinstance(e, bool) and e >= 1) for e in size):
        raise ValueError(f"beamkernels.{op}: argument 'output_size' must be a positive int or a pair of positive ints (or None), got {output_size!r}")
    return ref.complex_adaptive_avg_pool2d(x, size)


__all__ = ["complex_max_pool2d", "complex_avg_pool2d", "complex_adaptive_avg_pool2d"]
