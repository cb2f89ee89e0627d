"""Fused complex convolutions: ``activation(conv(x, weight) + bias)`` in one op.

- ``beamkernels::complex_conv2d`` / ``complex_conv2d_backward``: schemas in csrc/ops.cpp, CPU
  kernels in csrc/cpu/conv.cpp + conv_glue.cpp (CUDA: csrc/cuda/conv.cu); fake and autograd here.
- ``beamkernels::triton_complex_conv2d`` / ``triton_complex_conv2d_backward``: Triton
  implicit-GEMM kernels (beamkernels/kernels/triton/conv.py).
- The public functions validate inputs, resolve the backend and call one of the above, or the
  reference (beamkernels/reference/conv.py), which is the specification.

conv1d runs as conv2d on [N, C, 1, L]. conv_transpose2d: see its docstring for its backends.
"""

from __future__ import annotations

from typing import Sequence, Union

import torch
import torch.nn.functional as TF
from torch import Tensor

from beamkernels import _ext
from beamkernels import reference as ref
from beamkernels._backend import resolve
from beamkernels._checks import check_complex, check_real_param, check_same_device, check_same_dtype, check_tensor
from beamkernels.ops import _triton

# Activation codes shared with csrc/activation.h (enum Activation) and kernels/triton/activation.py.
ACT_CODES = {None: 0, "crelu": 1, "zrelu": 2, "modrelu": 3, "cardioid": 4}

IntOrPair = Union[int, Sequence[int]]


# ---- validation and argument normalization (shared by every backend) ----
def _tuple(v, n: int, op: str, arg: str, minimum: int) -> tuple[int, ...]:
    if isinstance(v, bool) or not isinstance(v, (int, tuple, list, torch.Size)):
        raise TypeError(f"beamkernels.{op}: argument '{arg}' must be an int or a tuple of {n} ints, got {v!r}")
    t = (int(v),) * n if isinstance(v, int) else tuple(int(e) for e in v)
    if len(t) == 1 and n > 1:
        t = t * n
    if len(t) != n:
        raise ValueError(f"beamkernels.{op}: argument '{arg}' must have {n} values, got {v!r}")
    if any(e < minimum for e in t):
        raise ValueError(f"beamkernels.{op}: argument '{arg}' must be >= {minimum}, got {v!r}")
    return t


def _check_activation(op: str, activation, activation_bias, z_channels: int, x: Tensor) -> None:
    if activation not in ACT_CODES:
        raise ValueError(
            f"beamkernels.{op}: argument 'activation' must be one of None, 'crelu', 'zrelu', 'modrelu', "
            f"'cardioid', got {activation!r}")
    if activation == "modrelu":
        if activation_bias is None:
            raise ValueError(f"beamkernels.{op}: activation='modrelu' needs 'activation_bias' (real, one per output "
                             f"channel: shape [{z_channels}])")
        check_real_param(activation_bias, x, op, "activation_bias", (z_channels,))
    elif activation_bias is not None:
        raise ValueError(f"beamkernels.{op}: 'activation_bias' is only used with activation='modrelu', "
                         f"got activation={activation!r}")


def _check_weight_bias(op: str, x: Tensor, weight: Tensor, bias: Tensor | None) -> None:
    check_complex(weight, op, "weight")
    check_same_dtype(weight, x, op, "weight", "x")
    check_same_device(weight, x, op, "weight", "x")
    if bias is not None:
        check_complex(bias, op, "bias")
        check_same_dtype(bias, x, op, "bias", "x")
        check_same_device(bias, x, op, "bias", "x")


def _same_padding(op: str, kernel, dilation) -> tuple[tuple[int, ...], tuple[int, ...] | None]:
    """padding='same' as torch: total d*(k-1) per dim, the extra one (odd total) on the right.
    Returns (symmetric padding, F.pad spec for the extra right side or None)."""
    sym, extra = [], []
    for k, d in zip(kernel, dilation):
        total = d * (k - 1)
        sym.append(total // 2)
        extra.append(total - 2 * (total // 2))
    if not any(extra):
        return tuple(sym), None
    pad = []
    for e in reversed(extra):  # F.pad lists the last dim first
        pad += [0, e]
    return tuple(sym), tuple(pad)


def _prepare_conv(op: str, x: Tensor, weight: Tensor, bias, stride, padding, dilation, groups, activation,
                  activation_bias, nd: int):
    """Validates a forward conv; returns (x, stride, padding, dilation) with padding explicit and
    symmetric (an odd 'same' total is applied to x with F.pad, as torch does)."""
    check_complex(x, op, "x")
    layout = "[N, C, L]" if nd == 1 else "[N, C, H, W]"
    if x.dim() != nd + 2:
        raise ValueError(f"beamkernels.{op}: argument 'x' must have {nd + 2} dims {layout}, got shape {list(x.shape)}")
    _check_weight_bias(op, x, weight, bias)
    if weight.dim() != nd + 2:
        raise ValueError(f"beamkernels.{op}: argument 'weight' must have {nd + 2} dims [C_out, C_in / groups, "
                         f"{'k' if nd == 1 else 'kh, kw'}], got shape {list(weight.shape)}")
    if isinstance(groups, bool) or not isinstance(groups, int) or groups < 1:
        raise ValueError(f"beamkernels.{op}: argument 'groups' must be a positive int, got {groups!r}")
    cin, cout = x.shape[1], weight.shape[0]
    if cin % groups or cout % groups:
        raise ValueError(f"beamkernels.{op}: groups={groups} must divide both the input channels ({cin}) and the "
                         f"output channels (weight.shape[0] = {cout})")
    if weight.shape[1] * groups != cin:
        raise ValueError(f"beamkernels.{op}: x has {cin} channels but weight.shape[1] * groups = {weight.shape[1]} * "
                         f"{groups} = {weight.shape[1] * groups} (weight must be [C_out, C_in / groups, ...])")
    if bias is not None and tuple(bias.shape) != (cout,):
        raise ValueError(f"beamkernels.{op}: argument 'bias' must have shape [{cout}], got {list(bias.shape)}")
    stride = _tuple(stride, nd, op, "stride", 1)
    dilation = _tuple(dilation, nd, op, "dilation", 1)
    kernel = tuple(weight.shape[2:])
    if isinstance(padding, str):
        if padding == "valid":
            padding = (0,) * nd
        elif padding == "same":
            if any(s != 1 for s in stride):
                raise ValueError(f"beamkernels.{op}: padding='same' needs stride 1 (as in torch), got stride={stride}")
            padding, extra = _same_padding(op, kernel, dilation)
            if extra is not None:
                x = TF.pad(x, extra)
        else:
            raise ValueError(f"beamkernels.{op}: argument 'padding' must be an int, a tuple, 'valid' or 'same', "
                             f"got {padding!r}")
    else:
        padding = _tuple(padding, nd, op, "padding", 0)
    for i in range(nd):
        span = dilation[i] * (kernel[i] - 1) + 1
        if x.shape[2 + i] + 2 * padding[i] < span:
            raise ValueError(f"beamkernels.{op}: the kernel (extent {span} = dilation * (k - 1) + 1 in spatial dim {i}) "
                             f"is bigger than the padded input ({x.shape[2 + i]} + 2 * {padding[i]})")
    _check_activation(op, activation, activation_bias, cout, x)
    return x, stride, padding, dilation


# ---- compiled (C++ / CUDA) ops: fake kernels and autograd ----
def _out_size(size: int, k: int, s: int, p: int, d: int) -> int:
    return (size + 2 * p - d * (k - 1) - 1) // s + 1


if _ext.LOADED and hasattr(torch.ops.beamkernels, "complex_conv2d"):

    @torch.library.register_fake("beamkernels::complex_conv2d")
    def _conv_fake(x, weight, bias, stride, padding, dilation, groups, activation, activation_bias):
        n, cout = x.shape[0], weight.shape[0]
        ho = _out_size(x.shape[2], weight.shape[2], stride[0], padding[0], dilation[0])
        wo = _out_size(x.shape[3], weight.shape[3], stride[1], padding[1], dilation[1])
        y = x.new_empty((n, cout, ho, wo))
        saved = x.new_empty((n, 2 * cout, ho, wo), dtype=x.real.dtype)
        return y, saved

    @torch.library.register_fake("beamkernels::complex_conv2d_backward")
    def _conv_bwd_fake(grad, x, weight, bias, saved, stride, padding, dilation, groups, activation, activation_bias,
                       output_mask):
        gx = x.new_empty(x.shape) if output_mask[0] else None
        gw = weight.new_empty(weight.shape) if output_mask[1] else None
        gb = weight.new_empty((weight.shape[0],)) if output_mask[2] else None
        gab = activation_bias.new_empty(activation_bias.shape) if (output_mask[3] and activation_bias is not None) else None
        return gx, gw, gb, gab

    def _conv_setup(ctx, inputs, output):
        x, weight, bias, stride, padding, dilation, groups, activation, activation_bias = inputs
        ctx.save_for_backward(x, weight, bias, output[1], activation_bias)
        ctx.args = (stride, padding, dilation, groups, activation)
        ctx.mask = [x.requires_grad, weight.requires_grad, bias is not None and bias.requires_grad,
                    activation_bias is not None and activation_bias.requires_grad]

    def _conv_backward(ctx, grad, grad_saved):
        x, weight, bias, saved, activation_bias = ctx.saved_tensors
        stride, padding, dilation, groups, activation = ctx.args
        gx, gw, gb, gab = torch.ops.beamkernels.complex_conv2d_backward(
            grad, x, weight, bias, saved, stride, padding, dilation, groups, activation, activation_bias, ctx.mask)
        return gx, gw, gb, None, None, None, None, None, gab

    torch.library.register_autograd("beamkernels::complex_conv2d", _conv_backward, setup_context=_conv_setup)


def _implemented_conv2d() -> tuple[str, ...]:
    impl = ["reference"]
    if _ext.LOADED and hasattr(torch.ops.beamkernels, "complex_conv2d"):
        impl += ["cpu", "cuda"]
    if _triton.ENABLED and _TRITON_CONV:
        impl.append("triton")
    return tuple(impl)


_TRITON_CONV = False


def _conv2d_dispatch(op: str, x: Tensor, weight: Tensor, bias, stride, padding, dilation, groups, activation,
                     activation_bias) -> Tensor:
    backend = resolve(op, x.device, implemented=_implemented_conv2d())
    if backend == "reference":
        return ref.complex_conv2d(x, weight, bias, stride, padding, dilation, groups, activation, activation_bias)
    code = ACT_CODES[activation]
    if backend == "triton":
        return torch.ops.beamkernels.triton_complex_conv2d(
            x, weight, bias, list(stride), list(padding), list(dilation), groups, code, activation_bias)
    return torch.ops.beamkernels.complex_conv2d(
        x, weight, bias, list(stride), list(padding), list(dilation), groups, code, activation_bias)[0]


# ---- public functions ----
def complex_conv2d(x: Tensor, weight: Tensor, bias: Tensor | None = None, stride: IntOrPair = 1,
                   padding: IntOrPair | str = 0, dilation: IntOrPair = 1, groups: int = 1,
                   activation: str | None = None, activation_bias: Tensor | None = None) -> Tensor:
    """Fused complex 2-D convolution: ``activation(conv2d(x, weight) + bias)``.

    x: complex [N, C_in, H, W]; weight: complex [C_out, C_in / groups, kh, kw]; bias: complex
    [C_out] or None; stride, padding (int, pair, 'valid' or 'same'), dilation, groups as in
    torch.nn.functional.conv2d. activation: None, 'crelu', 'zrelu', 'modrelu' or 'cardioid';
    activation_bias: modReLU's real bias [C_out] (only with 'modrelu').
    y[n, o] = sum_{c, i, j} w[o, c, i, j] x[n, c, s*h + d*i - p, s*w + d*j - p] + b[o]  (no conjugation).

    Equivalent to: ``act(torch.nn.functional.conv2d(x, weight, bias, stride, padding, dilation, groups))``
    with ``act`` the matching beamkernels.functional activation.
    """
    op = "complex_conv2d"
    x, stride, padding, dilation = _prepare_conv(op, x, weight, bias, stride, padding, dilation, groups, activation,
                                                 activation_bias, 2)
    return _conv2d_dispatch(op, x, weight, bias, stride, padding, dilation, groups, activation, activation_bias)


def complex_conv1d(x: Tensor, weight: Tensor, bias: Tensor | None = None, stride: IntOrPair = 1,
                   padding: IntOrPair | str = 0, dilation: IntOrPair = 1, groups: int = 1,
                   activation: str | None = None, activation_bias: Tensor | None = None) -> Tensor:
    """Fused complex 1-D convolution: ``activation(conv1d(x, weight) + bias)``; x [N, C_in, L],
    weight [C_out, C_in / groups, k]. Runs as complex_conv2d on [N, C_in, 1, L].

    Equivalent to: ``act(torch.nn.functional.conv1d(x, weight, bias, stride, padding, dilation, groups))``.
    """
    op = "complex_conv1d"
    x, stride, padding, dilation = _prepare_conv(op, x, weight, bias, stride, padding, dilation, groups, activation,
                                                 activation_bias, 1)
    backend = resolve(op, x.device, implemented=_implemented_conv2d())
    if backend == "reference":
        return ref.complex_conv1d(x, weight, bias, stride, padding, dilation, groups, activation, activation_bias)
    y = _conv2d_dispatch(op, x.unsqueeze(2), weight.unsqueeze(2), bias, (1,) + stride, (0,) + padding,
                         (1,) + dilation, groups, activation, activation_bias)
    return y.squeeze(2)


def complex_conv_transpose2d(x: Tensor, weight: Tensor, bias: Tensor | None = None, stride: IntOrPair = 1,
                             padding: IntOrPair = 0, output_padding: IntOrPair = 0, groups: int = 1,
                             dilation: IntOrPair = 1, activation: str | None = None,
                             activation_bias: Tensor | None = None) -> Tensor:
    """Fused complex transposed 2-D convolution: ``activation(conv_transpose2d(x, weight) + bias)``.

    x: complex [N, C_in, H, W]; weight: complex [C_in, C_out / groups, kh, kw] (torch's layout);
    the transpose (not the conjugate transpose) of conv2d, as torch computes it.

    Equivalent to: ``act(torch.nn.functional.conv_transpose2d(x, weight, bias, stride, padding,
    output_padding, groups, dilation))``.
    """
    op = "complex_conv_transpose2d"
    check_complex(x, op, "x")
    if x.dim() != 4:
        raise ValueError(f"beamkernels.{op}: argument 'x' must have 4 dims [N, C, H, W], got shape {list(x.shape)}")
    _check_weight_bias(op, x, weight, bias)
    if weight.dim() != 4:
        raise ValueError(f"beamkernels.{op}: argument 'weight' must have 4 dims [C_in, C_out / groups, kh, kw], "
                         f"got shape {list(weight.shape)}")
    if isinstance(groups, bool) or not isinstance(groups, int) or groups < 1:
        raise ValueError(f"beamkernels.{op}: argument 'groups' must be a positive int, got {groups!r}")
    cin = x.shape[1]
    if weight.shape[0] != cin:
        raise ValueError(f"beamkernels.{op}: x has {cin} channels but weight.shape[0] = {weight.shape[0]} "
                         f"(weight must be [C_in, C_out / groups, kh, kw])")
    if cin % groups:
        raise ValueError(f"beamkernels.{op}: groups={groups} must divide the input channels ({cin})")
    cout = weight.shape[1] * groups
    if bias is not None and tuple(bias.shape) != (cout,):
        raise ValueError(f"beamkernels.{op}: argument 'bias' must have shape [{cout}], got {list(bias.shape)}")
    stride = _tuple(stride, 2, op, "stride", 1)
    padding = _tuple(padding, 2, op, "padding", 0)
    dilation = _tuple(dilation, 2, op, "dilation", 1)
    output_padding = _tuple(output_padding, 2, op, "output_padding", 0)
    for i in range(2):
        if output_padding[i] >= max(stride[i], dilation[i]):
            raise ValueError(f"beamkernels.{op}: output_padding must be smaller than stride or dilation, got "
                             f"output_padding={output_padding}, stride={stride}, dilation={dilation}")
        size = (x.shape[2 + i] - 1) * stride[i] - 2 * padding[i] + dilation[i] * (weight.shape[2 + i] - 1) \
            + output_padding[i] + 1
        if size < 1:
            raise ValueError(f"beamkernels.{op}: the output would be empty in spatial dim {i} (size {size}); "
                             f"padding={padding} is too large")
    _check_activation(op, activation, activation_bias, cout, x)
    resolve(op, x.device, implemented=("reference",))
    return ref.complex_conv_transpose2d(x, weight, bias, stride, padding, output_padding, groups, dilation,
                                        activation, activation_bias)
