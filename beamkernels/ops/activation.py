"""Complex activations as custom ops: crelu, zrelu, modrelu(x, bias), cardioid.

- ``beamkernels::<name>`` / ``<name>_backward``: schemas in csrc/ops.cpp, kernels for CPU
  (csrc/cpu/activation.cpp) and CUDA (csrc/cuda/activation.cu); fake and autograd here.
- ``beamkernels::triton_<name>`` / ``triton_<name>_backward``: Triton kernels
  (beamkernels/kernels/triton/activation.py) registered with torch.library.triton_op.
- The public functions validate inputs, resolve the backend and call one of the above, or the
  reference (beamkernels/reference/activation.py), which is the specification.
"""

from __future__ import annotations

import torch
from torch import Tensor

from beamkernels import _ext
from beamkernels import reference as ref
from beamkernels.ops._dispatch import pick_backend
from beamkernels._checks import check_complex, check_min_dim, check_real_param
from beamkernels.ops import _triton
from beamkernels.ops._autograd import recording, reference_vjp

UNARY = ("crelu", "zrelu", "cardioid")
NAMES = UNARY + ("modrelu",)
_BLOCK = 1024


# ---- compiled (C++ / CUDA) ops: fake kernels and autograd ----
def register_compiled_activations(namespace: str = "beamkernels") -> None:
    """Fake kernels and autograd of <namespace>::{crelu, zrelu, cardioid, modrelu} (the C++ / CUDA
    ops). Called once for the package's own ops; tests/cuda_emu calls it for the emulated CUDA
    build of the same kernels."""
    ops = getattr(torch.ops, namespace)

    def register_unary(name: str) -> None:
        @torch.library.register_fake(f"{namespace}::{name}")
        def _fake(x):
            torch._check(x.is_complex(), lambda: f"{name}: x must be complex")
            return x.new_empty(x.shape)

        @torch.library.register_fake(f"{namespace}::{name}_backward")
        def _fake_bwd(grad, x):
            return x.new_empty(x.shape)

        backward_op = getattr(ops, f"{name}_backward")

        def _setup(ctx, inputs, output):
            ctx.save_for_backward(inputs[0])

        def _backward(ctx, grad):
            (x,) = ctx.saved_tensors
            if recording():  # double backward: through the reference (see ops/_autograd.py)
                return reference_vjp(getattr(ref, name), [x], [True], grad)[0]
            return backward_op(grad, x)

        torch.library.register_autograd(f"{namespace}::{name}", _backward, setup_context=_setup)

    for name in UNARY:
        register_unary(name)

    @torch.library.register_fake(f"{namespace}::modrelu")
    def _modrelu_fake(x, bias):
        return x.new_empty(x.shape)

    @torch.library.register_fake(f"{namespace}::modrelu_backward")
    def _modrelu_bwd_fake(grad, x, bias):
        return x.new_empty(x.shape), bias.new_empty(bias.shape)

    def _modrelu_setup(ctx, inputs, output):
        ctx.save_for_backward(inputs[0], inputs[1])

    def _modrelu_backward(ctx, grad):
        x, bias = ctx.saved_tensors
        if recording():
            return tuple(reference_vjp(ref.modrelu, [x, bias], ctx.needs_input_grad, grad))
        return tuple(ops.modrelu_backward(grad, x, bias))

    torch.library.register_autograd(f"{namespace}::modrelu", _modrelu_backward, setup_context=_modrelu_setup)


if _ext.LOADED:
    register_compiled_activations()


# ---- Triton ops ----
if _triton.ENABLED:
    from torch.library import triton_op, wrap_triton

    from beamkernels.kernels.triton import activation as tk

    def _layout(x: Tensor, channels: bool) -> tuple[int, int, int]:
        """(rows, C, inner) of x viewed as [rows, inner]; rows = N*C for per-channel bias."""
        if channels:
            n, c = x.shape[0], x.shape[1]
            rows = n * c
            return rows, c, (x.numel() // rows if rows else 0)
        return 1, 1, x.numel()

    def _triton_forward(name: str, x: Tensor, bias: Tensor | None) -> Tensor:
        x = x.contiguous()
        y = torch.empty_like(x)
        if x.numel() == 0:
            return y
        rows, c, inner = _layout(x, bias is not None)
        chunks = _triton.cdiv(inner, _BLOCK)
        xr, yr = torch.view_as_real(x), torch.view_as_real(y)
        wrap_triton(tk.activation_fwd_kernel)[(rows * chunks,)](
            xr, bias.contiguous() if bias is not None else xr, yr, c, inner, chunks, ACT=tk.CODES[name], BLOCK=_BLOCK)
        return y

    def _triton_backward(name: str, grad: Tensor, x: Tensor, bias: Tensor | None) -> tuple[Tensor, Tensor | None]:
        x, grad = x.contiguous(), grad.contiguous()
        gx = torch.empty_like(x)
        if x.numel() == 0:
            return gx, (torch.zeros_like(bias) if bias is not None else None)
        rows, c, inner = _layout(x, bias is not None)
        chunks = _triton.cdiv(inner, _BLOCK)
        partial = x.real.new_empty(rows * chunks) if bias is not None else x.real.new_empty(1)
        xr = torch.view_as_real(x)
        wrap_triton(tk.activation_bwd_kernel)[(rows * chunks,)](
            torch.view_as_real(grad), xr, bias.contiguous() if bias is not None else xr, torch.view_as_real(gx), partial,
            c, inner, chunks, ACT=tk.CODES[name], BLOCK=_BLOCK)
        if bias is None:
            return gx, None
        return gx, partial.view(x.shape[0], c, chunks).sum(dim=(0, 2))

    @triton_op("beamkernels::triton_crelu", mutates_args=())
    def triton_crelu(x: Tensor) -> Tensor:
        return _triton_forward("crelu", x, None)

    @triton_op("beamkernels::triton_crelu_backward", mutates_args=())
    def triton_crelu_backward(grad: Tensor, x: Tensor) -> Tensor:
        return _triton_backward("crelu", grad, x, None)[0]

    @triton_op("beamkernels::triton_zrelu", mutates_args=())
    def triton_zrelu(x: Tensor) -> Tensor:
        return _triton_forward("zrelu", x, None)

    @triton_op("beamkernels::triton_zrelu_backward", mutates_args=())
    def triton_zrelu_backward(grad: Tensor, x: Tensor) -> Tensor:
        return _triton_backward("zrelu", grad, x, None)[0]

    @triton_op("beamkernels::triton_cardioid", mutates_args=())
    def triton_cardioid(x: Tensor) -> Tensor:
        return _triton_forward("cardioid", x, None)

    @triton_op("beamkernels::triton_cardioid_backward", mutates_args=())
    def triton_cardioid_backward(grad: Tensor, x: Tensor) -> Tensor:
        return _triton_backward("cardioid", grad, x, None)[0]

    @triton_op("beamkernels::triton_modrelu", mutates_args=())
    def triton_modrelu(x: Tensor, bias: Tensor) -> Tensor:
        return _triton_forward("modrelu", x, bias)

    @triton_op("beamkernels::triton_modrelu_backward", mutates_args=())
    def triton_modrelu_backward(grad: Tensor, x: Tensor, bias: Tensor) -> tuple[Tensor, Tensor]:
        gx, gb = _triton_backward("modrelu", grad, x, bias)
        return gx, gb

    def _register_triton_unary_autograd(name: str) -> None:
        backward_op = getattr(torch.ops.beamkernels, f"triton_{name}_backward")

        def _setup(ctx, inputs, output):
            ctx.save_for_backward(inputs[0])

        def _backward(ctx, grad):
            (x,) = ctx.saved_tensors
            if recording():
                return reference_vjp(getattr(ref, name), [x], [True], grad)[0]
            return backward_op(grad, x)

        torch.library.register_autograd(f"beamkernels::triton_{name}", _backward, setup_context=_setup)

    for _name in UNARY:
        _register_triton_unary_autograd(_name)

    def _triton_modrelu_setup(ctx, inputs, output):
        ctx.save_for_backward(inputs[0], inputs[1])

    def _triton_modrelu_backward(ctx, grad):
        x, bias = ctx.saved_tensors
        if recording():
            return tuple(reference_vjp(ref.modrelu, [x, bias], ctx.needs_input_grad, grad))
        return tuple(torch.ops.beamkernels.triton_modrelu_backward(grad, x, bias))

    torch.library.register_autograd(
        "beamkernels::triton_modrelu", _triton_modrelu_backward, setup_context=_triton_modrelu_setup)


# ---- public functions ----
def _call_unary(name: str, x: Tensor) -> Tensor:
    check_complex(x, name, "x")
    backend = pick_backend(name, x.device)
    if backend == "reference":
        return getattr(ref, name)(x)
    if backend == "triton":
        return getattr(torch.ops.beamkernels, f"triton_{name}")(x)
    return getattr(torch.ops.beamkernels, name)(x)


def crelu(x: Tensor) -> Tensor:
    """Split ReLU: ``relu(Re z) + i relu(Im z)``.

    Equivalent to: ``torch.complex(torch.relu(x.real), torch.relu(x.imag))``.
    """
    return _call_unary("crelu", x)


def zrelu(x: Tensor) -> Tensor:
    """zReLU: ``z`` where ``Re z >= 0`` and ``Im z >= 0``, else 0.

    Equivalent to: ``torch.where((x.real >= 0) & (x.imag >= 0), x, 0)``.
    """
    return _call_unary("zrelu", x)


def cardioid(x: Tensor) -> Tensor:
    """Cardioid: ``0.5 * (1 + Re z / |z|) * z``, 0 at z = 0.

    Equivalent to: ``0.5 * (1 + x.real / x.abs()) * x`` (with 0 where x == 0).
    """
    return _call_unary("cardioid", x)


def modrelu(x: Tensor, bias: Tensor) -> Tensor:
    """modReLU: ``relu(|z| + b) * z / |z|``, 0 at z = 0; ``bias`` real, one value per channel (dim 1).

    Equivalent to: ``torch.relu(x.abs() + b) * x / x.abs()`` with ``b = bias.view(1, -1, 1, ...)``
    (and 0 where x == 0).
    """
    check_complex(x, "modrelu", "x")
    check_min_dim(x, 2, "modrelu", "x", "[N, C, ...]: modReLU's bias is per channel, dim 1")
    check_real_param(bias, x, "modrelu", "bias", (x.shape[1],))
    backend = pick_backend("modrelu", x.device)
    if backend == "reference":
        return ref.modrelu(x, bias)
    if backend == "triton":
        return torch.ops.beamkernels.triton_modrelu(x, bias)
    return torch.ops.beamkernels.modrelu(x, bias)
